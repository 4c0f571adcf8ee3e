/**
 * A server-sent-events stream over fetch that survives dropped connections: it reconnects with
 * `Last-Event-ID` (the manager replays what was missed) after a short, growing delay.
 *
 * Opening is separate from reading, so a caller can be sure it is subscribed before it reads
 * the current state (`tasks watch` GETs the task only once the stream is open, so no change
 * can fall between the two).
 */
import { ApiRequestError, NetworkError } from './errors.js';
import { type SseMessage, SseParser } from './sse.js';

export interface EventStreamOptions {
  /** Stops the stream: iteration ends quietly. */
  signal?: AbortSignal;
  /** Resume after this event id (sent as `Last-Event-ID` on the first connection). */
  lastEventId?: string;
  /** Delay before the first reconnect, until the server sends `retry:`; default 1 s. */
  retryMs?: number;
  /** Longest delay between reconnects (the delay doubles after each failed one); default 15 s. */
  maxRetryMs?: number;
  /** Failed reconnects in a row (refused, 5xx, or closed at once without an event) before the stream gives up and throws; default 8. */
  maxReconnects?: number;
  /** No bytes for this long means a dead connection (the manager sends a comment every 15 s); default 45 s. */
  idleTimeoutMs?: number;
}

/** Opens one connection: resolves to the response body of a 200 text/event-stream, or throws. */
export type Connect = (lastEventId: string | undefined, signal: AbortSignal) => Promise<ReadableStream<Uint8Array>>;

/**
 * Emitted when the stream reconnected without an event id to resume from, so events may have
 * been missed: the same signal as the manager's own `reset` event, and handled the same way
 * (reload the state).
 */
export const RESET: SseMessage = { event: 'reset', data: '{"type":"reset"}', id: '' };

export class EventStream implements AsyncIterable<SseMessage> {
  readonly #connect: Connect;
  readonly #parser = new SseParser();
  readonly #opts: Required<Omit<EventStreamOptions, 'signal' | 'lastEventId'>>;
  /** Aborted by close(), the caller's signal, or the end of iteration. */
  readonly #closed = new AbortController();
  #first: ReadableStream<Uint8Array> | undefined;
  #initialId: string | undefined;
  #iterated = false;

  private constructor(connect: Connect, opts: EventStreamOptions) {
    this.#connect = connect;
    this.#initialId = opts.lastEventId;
    this.#opts = {
      retryMs: opts.retryMs ?? 1000,
      maxRetryMs: opts.maxRetryMs ?? 15_000,
      maxReconnects: opts.maxReconnects ?? 8,
      idleTimeoutMs: opts.idleTimeoutMs ?? 45_000,
    };
    const outer = opts.signal;
    if (outer?.aborted) this.#closed.abort();
    outer?.addEventListener('abort', () => this.#closed.abort(), { once: true, signal: this.#closed.signal });
  }

  /** Connect once; rejects (ApiRequestError, NetworkError) when that first connection fails. */
  static async open(connect: Connect, opts: EventStreamOptions = {}): Promise<EventStream> {
    const stream = new EventStream(connect, opts);
    stream.#first = await connect(opts.lastEventId, stream.#closed.signal);
    return stream;
  }

  /** The id a reconnect would resume from. */
  get lastEventId(): string | undefined {
    return this.#parser.lastEventId || this.#initialId;
  }

  close(): void {
    this.#closed.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SseMessage, void, undefined> {
    if (this.#iterated) throw new Error('an EventStream can be read only once');
    this.#iterated = true;
    let body = this.#first;
    this.#first = undefined;
    let failures = 0;
    try {
      for (;;) {
        if (body) {
          const openedAt = Date.now();
          const delivered = yield* this.#read(body);
          body = undefined;
          if (this.#closed.signal.aborted) return;
          // A connection that carried events, or stayed up a while (a proxy closing idle streams
          // every minute), was healthy. One that closes at once counts as a failed attempt, so
          // a server or proxy that keeps doing that is given up on instead of hammered forever.
          if (delivered || Date.now() - openedAt >= this.#opts.maxRetryMs) failures = 0;
          else if (++failures > this.#opts.maxReconnects) throw new Error('the event stream keeps closing');
        }
        if (this.#closed.signal.aborted) return;
        // A floor, so that `retry: 0` from a server cannot turn into a busy loop.
        const base = Math.max(10, this.#parser.retryMs ?? this.#opts.retryMs);
        if (!(await sleep(Math.min(this.#opts.maxRetryMs, base * 2 ** failures), this.#closed.signal))) return;
        const resumeFrom = this.lastEventId;
        try {
          body = await this.#connect(resumeFrom, this.#closed.signal);
        } catch (err) {
          if (this.#closed.signal.aborted) return;
          // 4xx (logged out, no such endpoint) will not heal by waiting; the rest may.
          if (!isTransient(err) || ++failures > this.#opts.maxReconnects) throw err;
          continue;
        }
        if (!resumeFrom) yield RESET;
      }
    } finally {
      this.#closed.abort();
    }
  }

  /** Read one connection to its end (or its drop). Returns whether it delivered any event. */
  async *#read(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, boolean, undefined> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    this.#parser.reset();
    let delivered = false;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      clearTimeout(idle);
      // Cancelling the reader ends the pending read() like a dropped connection would.
      idle = setTimeout(() => void reader.cancel(new Error('event stream idle')).catch(() => {}), this.#opts.idleTimeoutMs);
    };
    try {
      armIdle();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          return delivered; // dropped: the caller reconnects (or stops, if it was closed)
        }
        if (chunk.done) return delivered;
        armIdle();
        for (const msg of this.#parser.push(decoder.decode(chunk.value, { stream: true }))) {
          delivered = true;
          yield msg;
        }
      }
    } finally {
      clearTimeout(idle);
      // Ends the HTTP response when the consumer stops early.
      reader.cancel().catch(() => {});
    }
  }
}

function isTransient(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  return err instanceof ApiRequestError && (err.status >= 500 || err.status === 429 || err.status === 408);
}

/** Resolves true after ms, or false at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
