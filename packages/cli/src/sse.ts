/**
 * An incremental parser for the text/event-stream format (the WHATWG "server-sent events"
 * rules): feed it decoded text in whatever chunks the network delivers, get back whole events.
 *
 * Own code rather than a dependency: the format is ~20 rules, the popular parsers either pull in
 * a browser `EventSource` polyfill or are about as long as this file, and we need two things they
 * rarely expose together — the last event id across reconnects and the server's `retry:` hint.
 */

export interface SseMessage {
  /** The `event:` field; `message` when the server sent none. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last event id seen so far (ids persist across events, as in the spec); '' for none. */
  id: string;
}

/** A line longer than this is a broken or hostile server, not an event worth buffering. */
const MAX_BUFFER_CHARS = 16 * 1024 * 1024;

export class SseParser {
  #buf = '';
  #event = '';
  #data: string[] = [];
  #lastId = '';
  #retryMs: number | undefined;
  /** The previous chunk ended in CR: an LF at the start of the next one belongs to it. */
  #skipLF = false;
  #atStart = true;

  /** The id to send as `Last-Event-ID` when reconnecting; '' when the server sent none. */
  get lastEventId(): string {
    return this.#lastId;
  }

  /** The server's `retry:` reconnection time in ms, if it sent one. */
  get retryMs(): number | undefined {
    return this.#retryMs;
  }

  /** Feed the next piece of text; returns the events it completed, in order. */
  push(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    let s = text;
    if (s === '') return out;
    if (this.#atStart) {
      this.#atStart = false;
      if (s.startsWith('\uFEFF')) s = s.slice(1);
    }
    if (this.#skipLF) {
      this.#skipLF = false;
      if (s.startsWith('\n')) s = s.slice(1);
    }
    const buf = this.#buf + s;
    const eol = /[\r\n]/g;
    let pos = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      const i = m.index;
      this.#line(buf.slice(pos, i), out);
      if (buf[i] === '\r') {
        if (i + 1 === buf.length) this.#skipLF = true;
        else if (buf[i + 1] === '\n') eol.lastIndex = i + 2;
      }
      pos = eol.lastIndex;
    }
    this.#buf = buf.slice(pos);
    if (this.#buf.length > MAX_BUFFER_CHARS) throw new Error('event stream line too long');
    return out;
  }

  /**
   * Forget a half-received event (the connection dropped mid-event) but keep the last id and
   * the retry time, which are what a reconnect needs.
   */
  reset(): void {
    this.#buf = '';
    this.#event = '';
    this.#data = [];
    this.#skipLF = false;
    this.#atStart = true;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === '') {
      this.#dispatch(out);
      return;
    }
    if (line.startsWith(':')) return; // a comment, e.g. the manager's keepalive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        // The spec ignores ids containing NUL: they could not be sent back in a header.
        if (!value.includes('\0')) this.#lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored, as the spec says
    }
  }

  #dispatch(out: SseMessage[]): void {
    // An event without data lines is not dispatched (an `id:`-only block just moves the id).
    if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#lastId });
    this.#event = '';
    this.#data = [];
  }
}
