import { createRequire } from 'node:module';

/** What this module needs of an Aedes packet. */
interface QueuedPacket {
  topic: string;
  payload: Buffer | string;
}

/** The promise API of aedes-persistence's in-memory store (its `asyncPersistence.js`), as far as we override it. */
interface MemoryPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<QueuedPacket | undefined>;
  addSubscriptions(client: { id: string }, subs: Array<{ topic: string }>): Promise<void>;
}

// The package's main export wraps this class in a callback layer that Aedes 1.x does not need;
// the class itself is what Aedes calls. It ships no type for this path, hence the interface.
const MemoryPersistenceClass = createRequire(import.meta.url)('aedes-persistence/asyncPersistence.js') as new () => MemoryPersistence;

export interface QueueBounds {
  /** Messages queued for one session (offline, or sent and not yet acknowledged). */
  maxMessages: number;
  /** Their topic and payload bytes together. */
  maxBytes: number;
}

/**
 * Aedes's in-memory persistence with a bound on each session's outgoing queue. That queue
 * holds every QoS 1 message for a persistent session until the device acknowledges it (while
 * offline, and while in flight), so without a bound a device that never sends PUBACK, or
 * never comes back, makes the broker hold everything published to it.
 *
 * Beyond the bound a message is not queued for that session (`onDrop` is told). For a
 * connected device Aedes then fails to deliver it and closes the connection: a device that
 * acknowledges nothing is cut off. Nothing is lost for good: tasks live in the store's outbox
 * and are sent again when the device reconnects (docs/security.md).
 */
export class BoundedPersistence extends MemoryPersistenceClass {
  readonly #bounds: QueueBounds;
  readonly #onDrop: (clientId: string) => void;
  readonly #mayKeep: (clientId: string, filter: string) => boolean;
  readonly #queued = new Map<string, { messages: number; bytes: number }>();

  /**
   * `mayKeep` says which subscriptions a session may keep: Aedes stores a SUBSCRIBE packet's
   * whole list once any one filter in it is granted, refused filters included, so the ACL is
   * applied again here (for devices: their few command topics, docs/security.md).
   */
  constructor(bounds: QueueBounds, onDrop: (clientId: string) => void, mayKeep: (clientId: string, filter: string) => boolean) {
    super();
    this.#bounds = bounds;
    this.#onDrop = onDrop;
    this.#mayKeep = mayKeep;
  }

  override async addSubscriptions(client: { id: string }, subs: Array<{ topic: string }>): Promise<void> {
    const kept = subs.filter((sub) => this.#mayKeep(client.id, sub.topic));
    if (kept.length > 0) await super.addSubscriptions(client, kept);
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void> {
    if (this.#admit(sub.clientId, packet)) await super.outgoingEnqueue(sub, packet);
  }

  override async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void> {
    const admitted = subs.filter((sub) => this.#admit(sub.clientId, packet));
    if (admitted.length > 0) await super.outgoingEnqueueCombi(admitted, packet);
  }

  override async outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<QueuedPacket | undefined> {
    const removed = await super.outgoingClearMessageId(client, packet);
    const q = this.#queued.get(client.id);
    if (removed && q) {
      q.messages--;
      q.bytes -= sizeOf(removed);
      if (q.messages <= 0) this.#queued.delete(client.id);
    }
    return removed;
  }

  /** What a session holds now (tests, metrics). */
  queuedFor(clientId: string): { messages: number; bytes: number } {
    return { ...(this.#queued.get(clientId) ?? { messages: 0, bytes: 0 }) };
  }

  #admit(clientId: string, packet: QueuedPacket): boolean {
    const q = this.#queued.get(clientId) ?? { messages: 0, bytes: 0 };
    const bytes = sizeOf(packet);
    if (q.messages + 1 > this.#bounds.maxMessages || q.bytes + bytes > this.#bounds.maxBytes) {
      this.#onDrop(clientId);
      return false;
    }
    q.messages++;
    q.bytes += bytes;
    this.#queued.set(clientId, q);
    return true;
  }
}

function sizeOf(packet: QueuedPacket): number {
  return Buffer.byteLength(packet.topic) + (typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length);
}
