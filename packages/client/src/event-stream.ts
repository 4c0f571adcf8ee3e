/**
 * The one follower of a server-sent event stream: parses it with `eventsource-parser` (line
 * endings split across chunks or ending the stream, comments, `id:` and `retry:`, a bounded
 * buffer), reconnects with back-off after a drop, and resumes by sending the last event id
 * back, verbatim, as `Last-Event-ID`. Ids are opaque strings: never parsed, never compared.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { isTransient } from './errors.js';

/** One event as it came: its `event:` name (`message` when none), its data, and the last id seen. */
export interface SseMessage {
  event: string;
  data: string;
  /** The last event id received so far ('' before the first); what a reconnect sends back. */
  id: string;
}

export type StreamState = 'connecting' | 'live' | 'reconnecting';

export interface FollowOptions {
  /** Stops following: iteration ends quietly. */
  signal?: AbortSignal;
  /** Resume after this event id (from an earlier stream) instead of starting from now. */
  lastEventId?: string;
  /** Told when the connection comes up, drops, or is being made again. */
  onState?: (state: StreamState) => void;
  /** First reconnection delay when the server sends no `retry:`; default 1 s. */
  retryMs?: number;
  /** Longest delay between reconnections; default 15 s. */
  maxRetryMs?: number;
  /** Failed reconnections in a row before giving up; default 10 (Infinity: never give up). */
  maxReconnects?: number;
  /** A connection silent for this long is taken as dead (the manager sends a keepalive every 15 s); default 45 s. */
  idleTimeoutMs?: number;
  /** Most characters of one unfinished event kept in memory; a larger event ends the connection. Default 4 MiB. */
  maxEventChars?: number;
}

/** Opens one connection: resolves with the response body, or rejects (PallasApiError, PallasNetworkError). */
export type Connect = (lastEventId: string, signal: AbortSignal) => Promise<ReadableStream<Uint8Array>>;

/** A followed stream: iterate it for its events; `opened` settles with its first connection. */
export interface FollowedStream extends AsyncIterable<SseMessage> {
  /** Resolves once connected; rejects if the first connection fails for good (a 4xx, or retries used up). */
  readonly opened: Promise<void>;
  /** The id to resume from: the last one received (or given). */
  readonly lastEventId: string;
  /** How many times the connection was made again after a drop (without events missed: resume). */
  readonly reconnects: number;
  close(): void;
}

/** The message a follower yields after reconnecting with no id to resume from: events may be missed. */
export const RECONNECTED_WITHOUT_ID = 'pallas-reconnected-without-id';

export function followEventStream(connect: Connect, opts: FollowOptions = {}): FollowedStream {
  const o = {
    retryMs: opts.retryMs ?? 1000,
    maxRetryMs: opts.maxRetryMs ?? 15_000,
    maxReconnects: opts.maxReconnects ?? 10,
    idleTimeoutMs: opts.idleTimeoutMs ?? 45_000,
    maxEventChars: opts.maxEventChars ?? 4 * 1024 * 1024,
  };
  const closed = new AbortController();
  const onAbort = (): void => closed.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) closed.abort();
  let lastEventId = opts.lastEventId ?? '';
  let serverRetryMs: number | undefined;
  let reconnects = 0;

  const state = (s: StreamState): void => opts.onState?.(s);
  const delay = (failures: number): number => {
    // A floor, so that `retry: 0` cannot become a busy loop; jitter, so that every console of
    // a fleet does not come back at the same instant after a manager restart.
    const base = Math.max(10, serverRetryMs ?? o.retryMs);
    const capped = Math.min(o.maxRetryMs, base * 2 ** failures);
    return capped / 2 + (Math.random() * capped) / 2;
  };

  /** Connects, retrying transient failures; rejects when a failure will not heal or retries are used up. */
  const connectWithRetry = async (failuresBefore: number): Promise<ReadableStream<Uint8Array>> => {
    let failures = failuresBefore;
    for (;;) {
      try {
        const body = await connect(lastEventId, closed.signal);
        state('live');
        return body;
      } catch (err) {
        if (closed.signal.aborted) throw err;
        // 4xx (logged out, no such route) will not heal by waiting; the rest may.
        if (!isTransient(err) || ++failures > o.maxReconnects) throw err;
        state('reconnecting');
        await sleep(delay(failures), closed.signal);
      }
    }
  };

  state('connecting');
  const first = connectWithRetry(0);
  const opened = first.then(() => undefined);
  // A caller that never awaits `opened` learns of the failure from iteration instead.
  opened.catch(() => {});

  async function* iterate(): AsyncGenerator<SseMessage, void, undefined> {
    let body: ReadableStream<Uint8Array>;
    try {
      body = await first;
    } catch (err) {
      if (closed.signal.aborted) return;
      throw err;
    }
    try {
      let failures = 0;
      for (;;) {
        const openedAt = Date.now();
        const delivered = yield* read(body);
        if (closed.signal.aborted) return;
        // A connection that delivered events, or lasted, was fine: start the back-off afresh. A
        // server that accepts and closes at once, over and over, is not followed forever.
        if (delivered || Date.now() - openedAt >= o.maxRetryMs) failures = 0;
        else if (++failures > o.maxReconnects) throw new Error('the event stream keeps closing');
        state('reconnecting');
        if (!(await sleep(delay(failures), closed.signal))) return;
        const resumeFrom = lastEventId;
        try {
          body = await connectWithRetry(failures);
        } catch (err) {
          if (closed.signal.aborted) return;
          throw err;
        }
        reconnects++;
        if (!resumeFrom) yield { event: RECONNECTED_WITHOUT_ID, data: '', id: '' };
      }
    } finally {
      closed.abort();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Reads one connection to its end (or its drop); returns whether it delivered any event. */
  async function* read(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, boolean, undefined> {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let batch: SseMessage[] = [];
    let broken = false;
    const parser = createParser({
      onEvent: (m: EventSourceMessage) => {
        // The id persists across events without one, as in the EventSource spec.
        if (m.id !== undefined) lastEventId = m.id;
        batch.push({ event: m.event ?? 'message', data: m.data, id: lastEventId });
      },
      onRetry: (ms) => { serverRetryMs = ms; },
      onError: (err) => {
        // An event larger than we keep: drop this connection and resume after the last id.
        if (err.type === 'max-buffer-size-exceeded') broken = true;
      },
      maxBufferSize: o.maxEventChars,
    });
    let delivered = false;
    /** Whether the text so far ends in CR. */
    let endsInCr = false;
    // eventsource-parser holds a CR that ends a chunk until it sees whether an LF follows, and
    // goes on holding it while chunks without a line break come: an event whose blank line is a
    // lone CR waits for the next line break, and is lost if the stream ends first. A lone CR is
    // the same line end as CRLF: once the next character is known not to be LF (or that none
    // comes), an LF is fed after it.
    const feed = (text: string): void => {
      if (endsInCr && !text.startsWith('\n')) {
        parser.feed('\n');
        endsInCr = false;
        if (broken || text === '') return;
      }
      if (text === '') return;
      parser.feed(text);
      endsInCr = text.endsWith('\r');
    };
    let idle: ReturnType<typeof setTimeout> | undefined;
    const armIdle = (): void => {
      clearTimeout(idle);
      // Cancelling the reader ends the pending read() as a dropped connection would.
      idle = setTimeout(() => void reader.cancel(new Error('event stream idle')).catch(() => {}), o.idleTimeoutMs);
    };
    const stop = (): void => void reader.cancel().catch(() => {});
    closed.signal.addEventListener('abort', stop, { once: true });
    try {
      armIdle();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          return delivered; // dropped: the caller reconnects (or stops, if it was closed)
        }
        if (closed.signal.aborted) return delivered;
        if (chunk.done) {
          if (!endsInCr) return delivered;
          feed(''); // the end of the stream: no LF follows its last CR
        } else {
          armIdle();
          feed(chunk.value);
        }
        const out = batch;
        batch = [];
        for (const m of out) {
          delivered = true;
          yield m;
        }
        if (broken || chunk.done) return delivered;
      }
    } finally {
      clearTimeout(idle);
      closed.signal.removeEventListener('abort', stop);
      // Ends the HTTP response when the consumer stops early.
      stop();
    }
  }

  const iterator = iterate();
  return {
    opened,
    get lastEventId() { return lastEventId; },
    get reconnects() { return reconnects; },
    close: () => closed.abort(),
    [Symbol.asyncIterator]: () => iterator,
  };
}

/** Resolves true after `ms`, or false at once when the signal aborts. */
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
