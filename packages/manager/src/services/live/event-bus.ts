import { randomBytes } from 'node:crypto';
import type { LiveEvent } from '@pallas/protocol';

/** An event as it goes out, or `reset`: events may have been lost, clients reload their lists. */
export type BusMessage = LiveEvent | { type: 'reset' };

/**
 * An event as numbered on one bus. Its JSON is made once, by the first that needs it (a stream
 * client, the relay), and shared by all: each open stream serialized every event again. An
 * event another manager relayed arrives as JSON and is parsed only when something here reads
 * its fields (a stream filtered by device or task, a listener that wants its type).
 */
export class NumberedEvent {
  /** `<epoch>.<seq>`: the epoch names this bus (this manager process), so an id from another is never mistaken for one of ours. */
  readonly id: string;
  readonly type: BusMessage['type'];
  #event: BusMessage | undefined;
  #json: string | undefined;

  constructor(id: string, event: BusMessage | undefined, json?: string, type?: BusMessage['type']) {
    this.id = id;
    // JSON whose type is known is parsed when first read; without its type, at once.
    this.#event = event ?? (type === undefined ? (JSON.parse(json!) as BusMessage) : undefined);
    this.#json = json;
    this.type = type ?? this.#event!.type;
  }

  get event(): BusMessage {
    return (this.#event ??= JSON.parse(this.#json!) as BusMessage);
  }

  get json(): string {
    return (this.#json ??= JSON.stringify(this.#event));
  }

  /**
   * Once delivered, an event that was serialized is kept as its JSON alone. The bus keeps the
   * last 10,000 for replays, so every event outlives the young generation: as objects, a
   * fan-out's events were old-generation garbage that each major GC had to trace (a string has
   * nothing in it to trace).
   */
  settle(): void {
    if (this.#json !== undefined) this.#event = undefined;
  }
}

export type LiveListener = (e: NumberedEvent) => void;

/** Which kinds of event a listener is given (and `reset`); asked again at every event (it may change). */
export type Wants = (type: LiveEvent['type']) => boolean;

/**
 * The live events the console and `pallas tasks watch` follow (GET /api/v1/events). Events
 * are numbered and the last `capacity` are kept, so a client that lost its stream for a moment
 * resumes with `Last-Event-ID` instead of reloading everything.
 *
 * With several managers (docs/scale-out.md) each has its own bus: `emit` is for events caused
 * here and is also handed to `relay` (which tells the other managers); `deliver` is for events
 * another manager relayed, which are numbered and kept here like our own. A client that
 * reconnects to another manager presents an id of another epoch and gets `reset`.
 */
export class EventBus {
  readonly epoch: string;
  readonly #capacity: number;
  /** A ring: slot `seq % capacity` holds event `seq` (dropping the oldest is O(1)). */
  readonly #ring: Array<NumberedEvent | undefined>;
  readonly #listeners = new Map<LiveListener, Wants | undefined>();
  #next = 1;
  /** The last seq delivered before events were passed over (`passedOver`); 0: none ever. */
  #gapAfter = 0;
  /** Set by the cluster relay; told of every event caused on this manager. */
  relay: ((event: NumberedEvent) => void) | undefined;

  constructor(capacity = 10_000, epoch = randomBytes(4).toString('hex')) {
    this.#capacity = capacity;
    this.#ring = new Array<NumberedEvent | undefined>(capacity);
    this.epoch = epoch;
  }

  /** An event caused on this manager. */
  emit(event: LiveEvent): void {
    const numbered = this.#number(event);
    this.#hand(numbered);
    this.relay?.(numbered);
    numbered.settle();
  }

  /** An event to give to this manager's listeners only (relayed from another, or a `reset`). */
  deliver(event: BusMessage): void {
    const numbered = this.#number(event);
    this.#hand(numbered);
    numbered.settle();
  }

  /**
   * An event another manager relayed, as the JSON it came in; `type` when the relay knows it
   * without parsing (else it is parsed here).
   */
  deliverJson(json: string, type?: LiveEvent['type']): void {
    const numbered = this.#number(undefined, json, type);
    this.#hand(numbered);
    numbered.settle();
  }

  #number(event: BusMessage | undefined, json?: string, type?: BusMessage['type']): NumberedEvent {
    const seq = this.#next++;
    const numbered = new NumberedEvent(`${this.epoch}.${seq}`, event, json, type);
    this.#ring[seq % this.#capacity] = numbered;
    return numbered;
  }

  /** To each listener that wants events of its type (`reset` to all of them). */
  #hand(numbered: NumberedEvent): void {
    const type = numbered.type;
    for (const [listener, wants] of this.#listeners) if (!wants || type === 'reset' || wants(type)) listener(numbered);
  }

  /**
   * Whether some listener looks at events of this type. A relayed event nobody here looks at
   * need not be read at all (the cluster relay asks before parsing another manager's events).
   */
  wants(type: LiveEvent['type']): boolean {
    for (const wants of this.#listeners.values()) if (!wants || wants(type)) return true;
    return false;
  }

  /**
   * Relayed events were passed over, unread, because nobody here wanted them: a client that
   * comes back with an id from before now cannot have them replayed, and gets `reset`.
   */
  passedOver(): void {
    this.#gapAfter = this.#next - 1;
  }

  /**
   * Events after `lastId` still in the buffer, or null when some of them may be gone: the id
   * is of another epoch (another manager, or before a restart), or too old (the caller must
   * then tell the client to reload its lists).
   */
  since(lastId: string): NumberedEvent[] | null {
    const dot = lastId.lastIndexOf('.');
    const seqText = lastId.slice(dot + 1);
    if (dot < 0 || lastId.slice(0, dot) !== this.epoch || !/^\d{1,15}$/.test(seqText)) return null;
    const lastSeq = Number(seqText);
    const last = this.#next - 1;
    if (lastSeq > last || (this.#gapAfter > 0 && lastSeq <= this.#gapAfter)) return null;
    if (lastSeq === last) return [];
    const oldest = Math.max(1, last - this.#capacity + 1);
    if (lastSeq + 1 < oldest) return null;
    const out: NumberedEvent[] = [];
    for (let seq = lastSeq + 1; seq <= last; seq++) out.push(this.#ring[seq % this.#capacity]!);
    return out;
  }

  /** `wants`: the kinds of event the listener looks at (all of them when absent). */
  subscribe(listener: LiveListener, wants?: Wants): () => void {
    this.#listeners.set(listener, wants);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
