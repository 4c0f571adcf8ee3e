import type { LiveEvent } from '@pallas/protocol';

export interface EventStream {
  /** Every event received so far, in order. */
  readonly events: Array<LiveEvent & { id: number }>;
  close(): void;
}

/**
 * Follows `GET /api/v1/events` for a test: a bare server-sent-events reader (the CLI has the
 * full one, with reconnects) that records what arrives. Resolves once the stream is open.
 */
export async function openEventStream(baseUrl: string, token: string, query = ''): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/api/v1/events${query}`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  if (res.status !== 200 || !res.body) throw new Error(`event stream: HTTP ${res.status} ${await res.text()}`);
  const events: Array<LiveEvent & { id: number }> = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id = 0;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ ...(JSON.parse(data.join('\n')) as LiveEvent), id });
        }
      }
    } catch {
      /* closed */
    }
  })();
  return { events, close: () => abort.abort() };
}
