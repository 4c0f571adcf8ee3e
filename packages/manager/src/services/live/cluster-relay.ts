import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import type { LiveEvent } from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Store } from '../../store/store.js';
import type { EventBus, NumberedEvent } from './event-bus.js';
import { markListener, othersListening } from './relay-listeners.js';

const CHANNEL = 'pallas_live';
/** Alone, whether another manager listens is asked at most this often. */
const ASK_ALONE_MS = 100;
/** Once another listener was seen, sending goes on this long before the question is asked again. */
const OTHERS_HOLD_MS = 1_000;
/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; larger events go through a table. */
const MAX_INLINE_BYTES = 7_600;
/**
 * At least this long between two sends: the events of the task-report flushes (every 20 ms)
 * and deliveries meanwhile go in one statement. Sent as soon as queued, a fan-out's events
 * took a statement per flush, 40 % of a cluster's statements in a round (docs/benchmarks.md).
 */
const SEND_GAP_MS = 50;
/** Bound parameters per NOTIFY statement, well under PostgreSQL's 65,535 (each payload is one). */
const MAX_PAYLOADS_PER_STATEMENT = 1_000;
/** Events parked in `relayed_events` are read within milliseconds; kept a minute for slow listeners. */
const PARKED_TTL_MS = 60_000;

/**
 * One NOTIFY: events one manager emitted, or a reference to one parked in a table. `tasks: 1`
 * marks an envelope of task events only, written right after `from` so that a receiver can
 * tell it from its first bytes (TASKS_ONLY) and pass it over unread when no listener of its
 * own wants task events.
 *
 * The events go one per line: `{"from":…,"n":…,"events":[⏎{…},⏎{…}⏎]}`. JSON holds no raw
 * line break (JSON.stringify escapes those in strings), so a receiver cuts the lines apart and
 * hands each event on as the JSON it came in, unparsed: its stream clients are sent that text,
 * and only what reads an event's fields parses it. Line breaks are whitespace to JSON.parse,
 * so a manager of an earlier version, which parses the whole envelope, reads it as before
 * (and one of the new version reads that version's envelopes, written on one line).
 */
type Envelope = { from: string; tasks?: 1; n?: number; events?: LiveEvent[]; ref?: string };

/** The start of an envelope of task events only, whoever sent it (instance ids hold no quote). */
const TASKS_ONLY = /^\{"from":"[^"]*","tasks":1,/;
/** An event's type, from the start of its JSON (events are made with `type` first; else it is parsed). */
const TYPE_FIRST = /^\{"type":"([a-z]+)"/;

/** An event waiting to be relayed: its JSON, shared with this manager's stream clients. */
type Queued = { type: LiveEvent['type']; json: string };

/**
 * Carries live events between managers that share a PostgreSQL database: each event caused
 * on one manager is sent with NOTIFY, and every other manager LISTENing delivers it to its own
 * event-stream clients. So an operator following `/api/v1/events` through manager C sees the
 * tasks created through A and the devices whose messages B handled.
 *
 * NOTIFY is not durable: while this manager's listening connection is down, events are missed.
 * When it is back, clients get `reset` and reload their lists, as after any gap.
 *
 * Nothing is sent while no other manager listens (relay-listeners.ts): a manager alone on
 * PostgreSQL would otherwise relay every event of a fan-out to nobody.
 */
export class ClusterRelay implements Service {
  readonly name = 'live events relay';
  readonly #url: string;
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #from: string;
  readonly #logger: Logger;
  #client: pg.Client | undefined;
  /** The backend pid of this manager's listening connection (0 while it has none). */
  #listenerPid = 0;
  /** When another listener was last seen (`performance.now()`), 0 if not at the last question. */
  #othersAt = 0;
  /** When that was last asked. */
  #askedAt = -Infinity;
  /** When the last batch was taken to be sent. */
  #sentAt = -Infinity;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  /** Events emitted here and not yet sent, in emission order. */
  #queue: Queued[] = [];
  /** Settles when the send loop has emptied the queue; undefined while it is idle. */
  #sending: Promise<void> | undefined;
  /** Notifications are handled in order, each after the one before. */
  #receiving: Promise<void> = Promise.resolve();
  /** What every envelope of this manager starts with, up to its number. */
  readonly #envelopeStart: string;
  /** The same for an envelope of task events only. */
  readonly #tasksEnvelopeStart: string;
  /** The envelope around the events, with its number at its longest (and the task mark). */
  readonly #envelopeBytes: number;
  /** Numbers this manager's envelopes: PostgreSQL folds identical payloads of one transaction into one. */
  #envelopes = 0;
  /** What this manager's own envelopes, inline or by reference, start with. */
  readonly #ownPrefix: string;

  constructor(opts: { databaseUrl: string; store: Store; bus: EventBus; instanceId: string; logger: Logger }) {
    this.#url = opts.databaseUrl;
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#from = opts.instanceId;
    this.#envelopeStart = `{"from":${JSON.stringify(this.#from)},"n":`;
    this.#tasksEnvelopeStart = `{"from":${JSON.stringify(this.#from)},"tasks":1,"n":`;
    this.#ownPrefix = `{"from":${JSON.stringify(this.#from)},`;
    this.#envelopeBytes = Buffer.byteLength(`${this.#tasksEnvelopeStart}${Number.MAX_SAFE_INTEGER},"events":[\n\n]}`);
    this.#logger = opts.logger;
  }

  async start(): Promise<void> {
    await this.#listen();
    this.#bus.relay = (event: NumberedEvent) => {
      // On the next turn, so that the rest of this turn's events (a fan-out emits thousands
      // at once) go with the first.
      if (this.#queue.length === 0 && !this.#sending) setImmediate(() => this.#startSending());
      // Serialized now, while the bus still holds the event as an object: the bus then keeps
      // it as this JSON alone (NumberedEvent.settle).
      this.#queue.push({ type: event.type as LiveEvent['type'], json: event.json });
    };
    this.#pruneTimer = setInterval(() => void this.#prune(), PARKED_TTL_MS);
    this.#pruneTimer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#bus.relay = undefined;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pruneTimer);
    if (this.#queue.length > 0 && !this.#sending) this.#startSending();
    await this.#sending;
    await this.#client?.end().catch(() => {});
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    // One at a time, in the order they came: a parked event is read from its table before the
    // events sent after it are delivered.
    client.on('notification', (n) => {
      this.#receiving = this.#receiving.then(() => this.#received(n.payload));
    });
    client.on('error', (err) => {
      this.#logger.warn({ err }, 'lost the connection that hears other managers\' live events; reconnecting');
      void client.end().catch(() => {});
      this.#reconnect();
    });
    await client.connect();
    const pid = await markListener(client);
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
    this.#listenerPid = pid;
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

  /**
   * Sends until the queue is empty, one statement at a time, each carrying everything queued
   * while the one before was out. One round trip per event (or per small batch) could not keep
   * up: under a fan-out the database answers in milliseconds, events arrive faster, and what
   * other managers' clients saw fell seconds behind (docs/scale-out.md).
   */
  #startSending(): void {
    if (this.#sending || this.#queue.length === 0) return;
    this.#sending = (async () => {
      while (this.#queue.length > 0) {
        // Alone, asked at most every ASK_ALONE_MS, the events queued meanwhile waiting: else a
        // fan-out asks once per round trip, hundreds of statements a second for no events sent.
        if (!this.#othersAt) await sleep(Math.max(0, this.#askedAt + ASK_ALONE_MS - performance.now()));
        // A lone event after a quiet spell goes at once; under a burst, a batch per SEND_GAP_MS.
        // Not while stopping: what is queued goes before the manager ends.
        else if (!this.#stopped) await sleep(Math.max(0, this.#sentAt + SEND_GAP_MS - performance.now()));
        this.#sentAt = performance.now();
        const events = this.#queue;
        this.#queue = [];
        if (!(await this.#othersListening())) continue;
        await this.#send(events).catch((err: unknown) =>
          this.#logger.warn({ err, count: events.length }, 'could not relay live events to the other managers'));
      }
    })().finally(() => {
      this.#sending = undefined;
    });
  }

  /**
   * Whether to send a batch whose events were all emitted before this call: asked after them,
   * so a manager that listened by then is counted, and one that starts later has no client
   * that could have seen them. A yes holds for OTHERS_HOLD_MS without asking again (sending
   * to nobody a moment after the last one left costs nothing but the sending). If the
   * question fails, the batch is sent.
   */
  async #othersListening(): Promise<boolean> {
    if (this.#othersAt && performance.now() - this.#othersAt < OTHERS_HOLD_MS) return true;
    this.#askedAt = performance.now();
    const others = await othersListening(this.#store, this.#listenerPid, this.#from).catch(() => true);
    this.#othersAt = others ? this.#askedAt : 0;
    return others;
  }

  async #send(events: Queued[]): Promise<void> {
    // Greedy packing into payloads under the NOTIFY limit; an event too big alone is parked
    // in a table and its envelope names it. A run of task events goes in envelopes of its own
    // (in the same order as everything else): a manager whose listeners want no task events
    // passes those over without parsing them, and under a fan-out they are most of the events.
    const payloads: string[] = [];
    const parked: Array<{ id: string; payload: string; created_ms: number }> = [];
    let chunk: string[] = [];
    let chunkOfTasks = false;
    let bytes = 0;
    const endChunk = () => {
      if (chunk.length > 0) payloads.push(`${chunkOfTasks ? this.#tasksEnvelopeStart : this.#envelopeStart}${++this.#envelopes},"events":[\n${chunk.join(',\n')}\n]}`);
      chunk = [];
      bytes = 0;
    };
    for (const { type, json } of events) {
      if ((type === 'task') !== chunkOfTasks) {
        endChunk();
        chunkOfTasks = type === 'task';
      }
      const size = Buffer.byteLength(json) + 2;
      if (size + this.#envelopeBytes > MAX_INLINE_BYTES) {
        endChunk();
        const ref = randomBytes(12).toString('hex');
        parked.push({ id: ref, payload: json, created_ms: Date.now() });
        payloads.push(JSON.stringify({ from: this.#from, ref } satisfies Envelope));
        continue;
      }
      if (bytes + size + this.#envelopeBytes > MAX_INLINE_BYTES) endChunk();
      chunk.push(json);
      bytes += size;
    }
    endChunk();
    // Parked events are committed before the notifications that name them are sent.
    for (let i = 0; i < parked.length; i += 100) await this.#store.write.insertInto('relayed_events').values(parked.slice(i, i + 100)).execute();
    await this.#notify(payloads);
  }

  /**
   * The payloads in order, a thousand per statement (notifications of one transaction arrive
   * in the order sent, and each statement commits before the next), each its own parameter,
   * which goes to PostgreSQL as it is. Both other ways cost the manager an escape of every
   * payload in JavaScript: as a text[] parameter, node-postgres built an array literal (2-3 %
   * of a cluster manager's CPU under a fan-out); as one JSON array, `JSON.stringify` escaped
   * every quote of the events' JSON again (the relay's sending took 3.1 % of the managers' CPU
   * with it, 2.1 % without: `perf`, docs/benchmarks.md).
   */
  async #notify(payloads: string[]): Promise<void> {
    for (let i = 0; i < payloads.length; i += MAX_PAYLOADS_PER_STATEMENT) {
      const rows = payloads.slice(i, i + MAX_PAYLOADS_PER_STATEMENT).map((p, n) => sql`(${sql.lit(n)}, ${p})`);
      await sql`select pg_notify(${CHANNEL}, p) from (values ${sql.join(rows)}) as t(n, p) order by n`.execute(this.#store.write);
    }
  }

  async #received(payload: string | undefined): Promise<void> {
    // Every listener hears every notification, this manager's own too (sent on another of its
    // connections): ours are told by their first bytes, not parsed (with three managers a third
    // of all notifications, up to 7.6 kB each, under a fan-out).
    if (!payload || payload.startsWith(this.#ownPrefix)) return;
    // Task events nobody here looks at: no stream client is open, and no rollout is (the
    // rollout engine's listener wants them only then). The bus is told, so that a client
    // that comes back with an earlier event id reloads instead of missing these.
    const tasksOnly = TASKS_ONLY.test(payload);
    if (tasksOnly && !this.#bus.wants('task')) return this.#bus.passedOver();
    try {
      const firstBreak = payload.indexOf('\n');
      if (firstBreak >= 0) {
        const lines = payload.slice(firstBreak + 1, payload.lastIndexOf('\n'));
        for (const json of lines.split(',\n')) this.#bus.deliverJson(json, tasksOnly ? 'task' : typeOf(json));
        return;
      }
      // By reference, or from a manager of an earlier version (its events on one line).
      const envelope = JSON.parse(payload) as Envelope;
      if (envelope.from === this.#from) return;
      if (envelope.ref) {
        const row = await this.#store.write.selectFrom('relayed_events').select('payload').where('id', '=', envelope.ref).executeTakeFirst();
        if (!row) return this.#bus.deliver({ type: 'reset' });
        this.#bus.deliverJson(row.payload, typeOf(row.payload));
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

function typeOf(json: string): LiveEvent['type'] | undefined {
  return TYPE_FIRST.exec(json)?.[1] as LiveEvent['type'] | undefined;
}
