import type { LiveEvent } from '@pallas/protocol';
import { API_BASE } from '../api/client.js';
import { authHeaders } from '../auth/session.js';
import { SseParser } from './sse-parser.js';

export type StreamState = 'connecting' | 'live' | 'reconnecting';

export interface StreamHandlers {
  onEvent(event: LiveEvent): void;
  /** Events were missed and are gone from the manager's buffer: reload whatever is shown. */
  onReset(): void;
  onState(state: StreamState): void;
  /** The session is no longer valid (401). */
  onUnauthorized(): void;
}

const MAX_BACKOFF_MS = 15_000;

/**
 * Follows `GET /api/v1/events`. It reads the stream with fetch rather than EventSource because
 * EventSource cannot send the Authorization header. After a drop it reconnects with back-off
 * and `Last-Event-ID`, so the manager replays what was missed (or says `reset`).
 */
export function openEventStream(handlers: StreamHandlers): { close(): void } {
  const abort = new AbortController();
  let lastId: string | undefined;
  let backoffMs = 1000;

  const connectOnce = async (): Promise<'again' | 'stop'> => {
    const res = await fetch(`${API_BASE}/events`, {
      headers: { ...authHeaders(), accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
      signal: abort.signal,
      cache: 'no-store',
    });
    if (res.status === 401) {
      handlers.onUnauthorized();
      return 'stop';
    }
    if (!res.ok || !res.body) return 'again';
    handlers.onState('live');
    backoffMs = 1000;
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return 'again';
      for (const raw of parser.push(value)) {
        if (raw.id !== undefined) lastId = raw.id;
        if (raw.event === 'reset') {
          handlers.onReset();
          continue;
        }
        try {
          handlers.onEvent(JSON.parse(raw.data) as LiveEvent);
        } catch {
          /* an event this console does not understand: skip it, keep the stream */
        }
      }
    }
  };

  void (async () => {
    handlers.onState('connecting');
    while (!abort.signal.aborted) {
      let outcome: 'again' | 'stop' = 'again';
      try {
        outcome = await connectOnce();
      } catch {
        /* network error or aborted: decided below */
      }
      if (outcome === 'stop' || abort.signal.aborted) return;
      handlers.onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  })();

  return { close: () => abort.abort() };
}
