/** One server-sent event as it arrived: its `event:` name, `id:` and joined `data:` lines. */
export interface RawEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * Splits a text/event-stream into events (the WHATWG format, without `retry:`, which the
 * caller's own back-off replaces). Fed with decoded chunks as they arrive, in any sizes.
 */
export class SseParser {
  #buffer = '';

  push(chunk: string): RawEvent[] {
    this.#buffer += chunk.replace(/\r\n?/g, '\n');
    const events: RawEvent[] = [];
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue; // comments keep the stream alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'id') id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) events.push({ event, id, data: data.join('\n') });
    }
    return events;
  }
}
