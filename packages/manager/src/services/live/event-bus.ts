import type { LiveEvent } from '@pallas/protocol';

export interface NumberedEvent {
  id: number;
  event: LiveEvent;
}

export type LiveListener = (e: NumberedEvent) => void;

/**
 * The live events the console and `pallas tasks watch` follow (GET /api/v1/events). Events
 * are numbered and the last `capacity` are kept, so a client that lost its stream for a moment
 * resumes with `Last-Event-ID` instead of reloading everything.
 */
export class EventBus {
  readonly #capacity: number;
  readonly #ring: NumberedEvent[] = [];
  readonly #listeners = new Set<LiveListener>();
  #next = 1;

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  emit(event: LiveEvent): void {
    const numbered = { id: this.#next++, event };
    this.#ring.push(numbered);
    if (this.#ring.length > this.#capacity) this.#ring.splice(0, this.#ring.length - this.#capacity);
    for (const listener of this.#listeners) listener(numbered);
  }

  /**
   * Events after `lastId` still in the buffer, or null when some of them are gone (the caller
   * must then reload its lists).
   */
  since(lastId: number): NumberedEvent[] | null {
    if (lastId >= this.#next - 1) return [];
    const first = this.#ring[0];
    if (!first || first.id > lastId + 1) return null;
    return this.#ring.slice(lastId + 1 - first.id);
  }

  subscribe(listener: LiveListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
