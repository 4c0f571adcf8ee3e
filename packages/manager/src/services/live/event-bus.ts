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
  /** A ring: slot `id % capacity` holds event `id` (dropping the oldest is O(1)). */
  readonly #ring: Array<NumberedEvent | undefined>;
  readonly #listeners = new Set<LiveListener>();
  #next = 1;

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
    this.#ring = new Array<NumberedEvent | undefined>(capacity);
  }

  emit(event: LiveEvent): void {
    const numbered = { id: this.#next++, event };
    this.#ring[numbered.id % this.#capacity] = numbered;
    for (const listener of this.#listeners) listener(numbered);
  }

  /**
   * Events after `lastId` still in the buffer, or null when some of them are gone (the caller
   * must then reload its lists).
   */
  since(lastId: number): NumberedEvent[] | null {
    const last = this.#next - 1;
    if (lastId >= last) return [];
    const oldest = Math.max(1, last - this.#capacity + 1);
    if (lastId + 1 < oldest) return null;
    const out: NumberedEvent[] = [];
    for (let id = lastId + 1; id <= last; id++) out.push(this.#ring[id % this.#capacity]!);
    return out;
  }

  subscribe(listener: LiveListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
