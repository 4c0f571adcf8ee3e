import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Store } from '../../store/store.js';
import { dbNowMs } from './db-clock.js';

/**
 * How often a manager says it is alive, and after how long without a word it counts as dead.
 * Three missed heartbeats: failover (another manager re-sending a dead one's tasks) comes
 * within ~4 s of a SIGKILL (issue #14's target is 5 s; `npm run bench -- --scenario cluster`
 * measures it). A live manager stalled that long only has its in-flight tasks sent again by
 * another, which the agent's journal drops as duplicates.
 */
export const HEARTBEAT_MS = 1_000;
export const DEAD_AFTER_MS = 3_000;
/** Rows of managers dead this long are removed (they only serve `pallas cluster` until then). */
const FORGET_AFTER_MS = 24 * 3_600_000;

export interface ManagerInstance {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  url: string | null;
  broker: string;
  startedMs: number;
  heartbeatMs: number;
  alive: boolean;
}

/** Another manager sharing this database signs with other keys (docs/scale-out.md). */
export class ClusterKeyMismatch extends Error {}

/** A fresh id for this manager process, e.g. `m-3f9a1c`: short, since it prefixes event ids. */
export function newInstanceId(): string {
  return `m-${randomBytes(3).toString('hex')}`;
}

/**
 * This manager's row among the managers sharing the database: written at start, its
 * heartbeat renewed every second, removed at a clean stop. Other managers read the table to
 * tell live managers from dead ones (a dead manager's sent tasks are sent again by the
 * stranded-task sweep) and `GET /api/v1/cluster` shows it.
 */
export class ManagerInstances implements Service {
  readonly name = 'manager heartbeat';
  readonly id: string;
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #row: { version: string; url: string | null; broker: string; keysFingerprint: string };
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> | undefined;

  constructor(opts: { id: string; store: Store; logger: Logger; version: string; url: string | null; broker: string; keysFingerprint: string }) {
    this.id = opts.id;
    this.#store = opts.store;
    this.#logger = opts.logger;
    this.#row = { version: opts.version, url: opts.url, broker: opts.broker, keysFingerprint: opts.keysFingerprint };
  }

  async start(): Promise<void> {
    // A live manager with other signing keys would hand out download URLs and manifests this
    // one rejects (and the reverse): refuse to join rather than fail devices later.
    const others = await this.list();
    const mismatch = others.find((m) => m.alive && m.id !== this.id && m.keysFingerprint !== this.#row.keysFingerprint);
    if (mismatch) {
      throw new ClusterKeyMismatch(
        `manager ${mismatch.id} on ${mismatch.hostname} signs with other keys than this one; every manager of a cluster needs the same ` +
        'signing-key.pem, download-url.key and tls/ in its data dir, copied from the first (docs/scale-out.md)',
      );
    }
    const now = dbNowMs(this.#store);
    await this.#store.write.insertInto('manager_instances').values({
      id: this.id, hostname: hostname(), pid: process.pid, version: this.#row.version, url: this.#row.url, broker: this.#row.broker,
      keys_fingerprint: this.#row.keysFingerprint, started_ms: now, heartbeat_ms: now,
    }).execute();
    await this.#store.write.deleteFrom('manager_instances').where('heartbeat_ms', '<', sqlMinus(this.#store, FORGET_AFTER_MS)).execute();
    this.#timer = setInterval(() => {
      this.#beat ??= this.heartbeat().catch((err: unknown) => this.#logger.warn({ err }, 'manager heartbeat failed'))
        .finally(() => { this.#beat = undefined; });
    }, HEARTBEAT_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beat;
    await this.#store.write.deleteFrom('manager_instances').where('id', '=', this.id).execute().catch(() => {});
  }

  async heartbeat(): Promise<void> {
    await this.#store.write.updateTable('manager_instances').set({ heartbeat_ms: dbNowMs(this.#store) }).where('id', '=', this.id).execute();
  }

  /** Every manager the table knows, live ones first. */
  async list(): Promise<Array<ManagerInstance & { keysFingerprint: string }>> {
    const now = dbNowMs(this.#store);
    const rows = await this.#store.write.selectFrom('manager_instances').selectAll().select(now.as('now')).orderBy('started_ms').execute();
    return rows
      .map((r) => ({
        id: r.id, hostname: r.hostname, pid: r.pid, version: r.version, url: r.url, broker: r.broker, keysFingerprint: r.keys_fingerprint,
        startedMs: Number(r.started_ms), heartbeatMs: Number(r.heartbeat_ms), alive: Number(r.now) - Number(r.heartbeat_ms) < DEAD_AFTER_MS,
      }))
      .sort((a, b) => Number(b.alive) - Number(a.alive));
  }

  /** Ids of managers whose heartbeat stopped (their rows stay a day for the record). */
  async deadIds(): Promise<string[]> {
    const rows = await this.#store.write.selectFrom('manager_instances').select('id')
      .where('heartbeat_ms', '<', sqlMinus(this.#store, DEAD_AFTER_MS)).execute();
    return rows.map((r) => r.id);
  }
}

/** The database's "now" minus `ms`. */
function sqlMinus(store: Store, ms: number) {
  return sql<number>`${dbNowMs(store)} - ${ms}`;
}
