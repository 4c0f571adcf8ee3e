/**
 * Follow one task until it is final: from the live event stream when the manager serves it,
 * else (or once the stream gives up) by polling `GET /tasks/{id}`.
 */
import { FINAL_TASK_STATES, type Task } from '@pallas/protocol';
import type { PallasClient } from './client.js';
import { ApiRequestError, NetworkError } from './errors.js';
import type { EventStreamOptions } from './event-stream.js';

export interface WatchOptions {
  /** Stops watching: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the task as first read and after every change (also the final one). */
  onUpdate?: (task: Task) => void;
  /** Polling interval when there is no stream; default 1 s. */
  pollMs?: number;
  /** Passed to the event stream (tests shorten its delays). */
  stream?: Omit<EventStreamOptions, 'signal'>;
  /** Told why the stream is not used, once, when falling back to polling. */
  onFallback?: (reason: unknown) => void;
}

/** Transient GET failures in a row that polling sits out (a manager restarting) before giving up. */
const MAX_POLL_FAILURES = 10;

export function isFinal(task: Task): boolean {
  return (FINAL_TASK_STATES as readonly string[]).includes(task.state);
}

/** Resolves with the final task. */
export async function watchTask(client: PallasClient, id: string, opts: WatchOptions = {}): Promise<Task> {
  const signal = opts.signal ?? new AbortController().signal;
  const update = (t: Task): Task => {
    opts.onUpdate?.(t);
    return t;
  };

  // Subscribe first, then read the task: a change made in between then arrives as an event
  // instead of being lost, and a task that is already final is seen by the GET.
  let stream: Awaited<ReturnType<PallasClient['openEvents']>> | undefined;
  try {
    stream = await client.openEvents({ taskId: id }, { ...opts.stream, signal });
  } catch (err) {
    signal.throwIfAborted();
    opts.onFallback?.(err);
  }
  try {
    let task = update(await client.getTask(id));
    if (isFinal(task)) return task;
    if (stream) {
      try {
        for await (const ev of stream) {
          if (ev.type === 'reset') task = await client.getTask(id);
          else if (ev.type === 'task' && ev.task.id === id) task = ev.task;
          else continue;
          update(task);
          if (isFinal(task)) return task;
        }
      } catch (err) {
        // The stream gave up reconnecting (or a 4xx on reconnect): the GETs below say more.
        signal.throwIfAborted();
        opts.onFallback?.(err);
      }
      signal.throwIfAborted();
    }
    return await poll(client, id, task, signal, opts.pollMs ?? 1000, update);
  } finally {
    stream?.close();
  }
}

async function poll(client: PallasClient, id: string, last: Task, signal: AbortSignal, everyMs: number, update: (t: Task) => Task): Promise<Task> {
  let failures = 0;
  let prev = last;
  for (;;) {
    await delay(everyMs, signal);
    let task: Task;
    try {
      task = await client.getTask(id);
    } catch (err) {
      const transient = err instanceof NetworkError || (err instanceof ApiRequestError && err.status >= 500);
      if (!transient || ++failures > MAX_POLL_FAILURES) throw err;
      continue;
    }
    failures = 0;
    // Unchanged polls are not updates: a plain-text watcher prints a line per change.
    if (JSON.stringify(task) !== JSON.stringify(prev)) update(task);
    prev = task;
    if (isFinal(task)) return task;
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
