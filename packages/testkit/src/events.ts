import { PallasClient } from '@pallas/client';
import type { EventsQuery, LiveEvent } from '@pallas/protocol';

export interface EventStream {
  /** Every event received so far, in order. */
  readonly events: LiveEvent[];
  close(): void;
}

/**
 * Follows the live event stream for a test and records what arrives (the client's follower,
 * which reconnects and resumes by itself). Resolves once the stream is open.
 */
export async function openEventStream(baseUrl: string, token: string, query: EventsQuery = {}): Promise<EventStream> {
  const stream = new PallasClient({ server: baseUrl, token }).events(query);
  await stream.opened;
  const events: LiveEvent[] = [];
  void (async () => {
    try {
      for await (const m of stream) if (m.type !== 'reset') events.push(m);
    } catch {
      // the stream gave up: what was recorded stays
    }
  })();
  return { events, close: () => stream.close() };
}
