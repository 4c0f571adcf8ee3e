import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import type { LiveEvent } from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Store } from '../../store/store.js';
import type { EventBus } from './event-bus.js';

const CHANNEL = 'pallas_live';
/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; larger events go through a table. */
const MAX_INLINE_BYTES = 7_600;
/** Events parked in `relayed_events` are read within milliseconds; kept a minute for slow listeners. */
const PARKED_TTL_MS = 60_000;

/** One NOTIFY: the events one manager emitted in one turn of its event loop, or a reference to them. */
type Envelope = { from: string; events?: LiveEvent[]; ref?: string };

/**
 * Carries live events between managers that share a PostgreSQL database: each event caused
 * on one manager is sent with NOTIFY, and every other manager LISTENing delivers it to its own
 * event-stream clients. So an operator following `/api/v1/events` through manager C sees the
 * tasks created through A and the devices whose messages B handled.
 *
 * NOTIFY is not durable: while this manager's listening connection is down, events are missed.
 * When it is back, clients get `reset` and reload their lists, as after any gap.
 */
export class ClusterRelay implements Service {
  readonly name = 'live events relay';
  readonly #url: string;
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #from: string;
  readonly #logger: Logger;
  #client: pg.Client | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  /** Sends are chained so that events leave in the order they were emitted. */
  #sending: Promise<void> = Promise.resolve();
  /** Events of this turn of the event loop: a fan-out emits thousands at once, sent in a few NOTIFYs. */
  #batch: LiveEvent[] = [];

  constructor(opts: { databaseUrl: string; store: Store; bus: EventBus; instanceId: string; logger: Logger }) {
    this.#url = opts.databaseUrl;
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#from = opts.instanceId;
    this.#logger = opts.logger;
  }

  async start(): Promise<void> {
    await this.#listen();
    this.#bus.relay = (event) => {
      if (this.#batch.length === 0) setImmediate(() => this.#flush());
      this.#batch.push(event);
    };
    this.#pruneTimer = setInterval(() => void this.#prune(), PARKED_TTL_MS);
    this.#pruneTimer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#bus.relay = undefined;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pruneTimer);
    await this.#sending;
    await this.#client?.end().catch(() => {});
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('notification', (n) => void this.#received(n.payload));
    client.on('error', (err) => {
      this.#logger.warn({ err }, 'lost the connection that hears other managers\' live events; reconnecting');
      void client.end().catch(() => {});
      this.#reconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
  }

  #reconnect(delayMs = 500): void {
    if (this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#listen().then(
        () => {
          this.#logger.info('hearing other managers\' live events again');
          // Whatever was relayed meanwhile is lost: clients reload.
          this.#bus.deliver({ type: 'reset' });
        },
        () => this.#reconnect(Math.min(delayMs * 2, 10_000)),
      );
    }, delayMs);
    this.#retryTimer.unref();
  }

  #flush(): void {
    const events = this.#batch;
    this.#batch = [];
    this.#sending = this.#sending.then(() => this.#send(events)).catch((err: unknown) =>
      this.#logger.warn({ err, count: events.length }, 'could not relay live events to the other managers'));
  }

  async #send(events: LiveEvent[]): Promise<void> {
    // Greedy packing into payloads under the NOTIFY limit; one event too big alone is parked.
    let chunk: string[] = [];
    let bytes = 0;
    const head = `{"from":${JSON.stringify(this.#from)},"events":[`;
    const sendChunk = async () => {
      if (chunk.length > 0) await this.#notify(`${head}${chunk.join(',')}]}`);
      chunk = [];
      bytes = 0;
    };
    for (const event of events) {
      const json = JSON.stringify(event);
      const size = Buffer.byteLength(json) + 1;
      if (size + head.length + 2 > MAX_INLINE_BYTES) {
        await sendChunk();
        const ref = randomBytes(12).toString('hex');
        await this.#store.write.insertInto('relayed_events').values({ id: ref, payload: json, created_ms: Date.now() }).execute();
        await this.#notify(JSON.stringify({ from: this.#from, ref } satisfies Envelope));
        continue;
      }
      if (bytes + size + head.length + 2 > MAX_INLINE_BYTES) await sendChunk();
      chunk.push(json);
      bytes += size;
    }
    await sendChunk();
  }

  async #notify(payload: string): Promise<void> {
    await sql`select pg_notify(${CHANNEL}, ${payload})`.execute(this.#store.write);
  }

  async #received(payload: string | undefined): Promise<void> {
    if (!payload) return;
    try {
      const envelope = JSON.parse(payload) as Envelope;
      if (envelope.from === this.#from) return;
      if (envelope.ref) {
        const row = await this.#store.write.selectFrom('relayed_events').select('payload').where('id', '=', envelope.ref).executeTakeFirst();
        if (!row) return this.#bus.deliver({ type: 'reset' });
        this.#bus.deliver(JSON.parse(row.payload) as LiveEvent);
      }
      for (const event of envelope.events ?? []) this.#bus.deliver(event);
    } catch (err) {
      this.#logger.warn({ err }, 'could not read a live event relayed by another manager');
    }
  }

  async #prune(): Promise<void> {
    await this.#store.write.deleteFrom('relayed_events').where('created_ms', '<', Date.now() - PARKED_TTL_MS).execute()
      .catch((err: unknown) => this.#logger.warn({ err }, 'could not prune relayed events'));
  }
}
