/**
 * Watches the manager's live stream for task outcomes on a thread of its own, as a console in
 * another browser would: in the bench process it would share an event loop with thousands of
 * simulated agents, and read the stream only when they let it, which timed the fleet, not the
 * manager. Times are absolute (`performance.timeOrigin + performance.now()`), comparable across
 * threads. The thread itself is task-stream-watcher.worker.mjs.
 */
import { Worker } from 'node:worker_threads';
import type { TaskState } from '@pallas/protocol';

export interface TaskOutcome {
  taskId: string;
  state: TaskState;
  /** Absolute ms (timeOrigin + now) when the stream delivered it. */
  at: number;
  message?: string;
}

export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts the watcher; resolves once the stream is open. Outcomes arrive through `onOutcome`. */
export async function watchTaskOutcomes(url: string, token: string, onOutcome: (o: TaskOutcome) => void): Promise<{ stop: () => Promise<void> }> {
  // Plain JavaScript: a worker thread does not inherit the tsx loader of the bench process.
  const worker = new Worker(new URL('./task-stream-watcher.worker.mjs', import.meta.url), { workerData: { url, token } });
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: { open: true } | TaskOutcome) => {
      if ('open' in m) resolve();
      else onOutcome(m);
    });
  });
  return { stop: async () => void (await worker.terminate()) };
}
