/**
 * Waiting for tasks to end: from the live event stream while the manager serves it, by polling
 * `GET /tasks/{id}` otherwise (or once the stream gives up).
 */
import { isFinalTaskState } from '@pallas/protocol/constants';
import type { Task } from '@pallas/protocol';
import type { PallasClient } from './client.js';
import { isTransient } from './errors.js';
import type { FollowOptions } from './event-stream.js';

export interface WaitOptions {
  /** Stops waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with each task as first read and after every change (also the final one). */
  onUpdate?: (task: Task) => void;
  /** Polling interval when there is no stream; default 1 s. */
  pollMs?: number;
  /** Passed to the event stream (tests shorten its delays). */
  stream?: Omit<FollowOptions, 'signal'>;
  /** Told why the stream is not used, once, when it falls back to polling. */
  onFallback?: (reason: unknown) => void;
}

/** Transient failures in a row that polling sits out (a manager restarting) before giving up. */
const MAX_POLL_FAILURES = 10;
/** GETs at once when reading many tasks. */
const READ_CONCURRENCY = 8;

export function isFinal(task: Task): boolean {
  return isFinalTaskState(task.state);
}

/** Resolves with the tasks once every one is final, in the order of `ids`. */
export async function waitForTasks(client: PallasClient, ids: readonly string[], opts: WaitOptions = {}): Promise<Task[]> {
  const signal = opts.signal ?? new AbortController().signal;
  const latest = new Map<string, Task>();
  const pending = new Set(ids);
  const seen = (t: Task): void => {
    // Other tasks' events, and late events of a task already final, change nothing.
    if (!pending.has(t.id)) return;
    const before = latest.get(t.id);
    latest.set(t.id, t);
    // Unchanged re-reads are not updates: a plain-text watcher prints a line per change.
    if (!before || JSON.stringify(before) !== JSON.stringify(t)) opts.onUpdate?.(t);
    if (isFinal(t)) pending.delete(t.id);
  };
  const readPending = async (): Promise<void> => {
    const queue = [...pending];
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) seen(await client.call('getTask', { params: { id }, signal }));
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, queue.length) }, worker));
  };
  const result = (): Task[] => ids.map((id) => latest.get(id)!);

  // Subscribe first, then read the tasks: a change made in between then arrives as an event
  // instead of being lost, and a task that is already final is seen by the read.
  const stream = client.events(ids.length === 1 ? { taskId: ids[0]! } : {}, { ...opts.stream, signal });
  try {
    let streaming = true;
    try {
      await stream.opened;
    } catch (err) {
      signal.throwIfAborted();
      streaming = false;
      opts.onFallback?.(err);
    }
    await readPending();
    if (pending.size === 0) return result();
    if (streaming) {
      try {
        for await (const m of stream) {
          if (m.type === 'reset') await readPending();
          else if (m.type === 'task') seen(m.task);
          if (pending.size === 0) return result();
        }
      } catch (err) {
        // The stream gave up reconnecting (or a 4xx on reconnect): the reads below say more.
        signal.throwIfAborted();
        opts.onFallback?.(err);
      }
      signal.throwIfAborted();
    }
    let failures = 0;
    for (;;) {
      await delay(opts.pollMs ?? 1000, signal);
      try {
        await readPending();
        failures = 0;
      } catch (err) {
        if (!isTransient(err) || ++failures > MAX_POLL_FAILURES) throw err;
      }
      if (pending.size === 0) return result();
    }
  } finally {
    stream.close();
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
