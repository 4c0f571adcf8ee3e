import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db, Store } from '../../store/store.js';
import type { ManagerInstances } from '../cluster/manager-instances.js';
import type { OnlineDevices } from '../devices/online-devices.js';
import { IN_FLIGHT } from './task-row.js';
import type { TaskOutbox } from './task-outbox.js';
import { updateTasks } from './task-report-statements.js';

/** A queued task older than this, for a device that is online, was missed by a delivery round. */
const QUEUED_GRACE_MS = 2_000;
const BATCH = 500;

/**
 * Tasks no manager is taking care of any more, when several managers share the work
 * (docs/scale-out.md). Run by one manager at a time (an exclusive job), every second:
 * - tasks in flight that a dead manager sent: it marks a task sent before publishing it, so it
 *   may have died in between. A live manager claims them (`sent_by` moves to it, a conditional
 *   update, so two sweeps never both claim one) and sends the device its in-flight tasks
 *   again; the agent's journal drops a task it already has, so nothing runs twice.
 * - queued tasks of online devices that waited more than two seconds: the manager that queued
 *   them did not see the device online (it had just restarted, or the presence went to another
 *   manager) or died before its delivery round.
 */
export class StrandedTasks {
  readonly #db: Db;
  readonly #postgres: boolean;
  readonly #instances: ManagerInstances;
  readonly #outbox: TaskOutbox;
  readonly #online: OnlineDevices;
  readonly #logger: Logger;

  constructor(deps: { store: Store; instances: ManagerInstances; outbox: TaskOutbox; online: OnlineDevices; logger: Logger }) {
    this.#db = deps.store.write;
    this.#postgres = deps.store.dialect === 'postgres';
    this.#instances = deps.instances;
    this.#outbox = deps.outbox;
    this.#online = deps.online;
    this.#logger = deps.logger;
  }

  /** One pass; returns how many tasks it claimed from dead managers. */
  async sweep(): Promise<number> {
    const claimed = await this.#claimFromDead();
    await this.#pumpLateQueued();
    return claimed;
  }

  async #claimFromDead(): Promise<number> {
    const dead = await this.#instances.deadIds();
    if (dead.length === 0) return 0;
    let total = 0;
    for (;;) {
      const rows = await this.#db.selectFrom('tasks').select(['id', 'sent_by'])
        .where('state', 'in', IN_FLIGHT).where('sent_by', 'in', dead).limit(BATCH).execute();
      if (rows.length === 0) break;
      // One conditional update for the batch: a row still sent by a dead manager moves to this
      // one; a row another sweep claimed meanwhile no longer matches. (One statement per row
      // took seconds for a fan-out's 500 tasks on a loaded machine: the failover time.) On
      // PostgreSQL its rows are locked first in the task-report flushes' order: a claim
      // during a fan-out's failover meets flushes that hold some of the same rows.
      const moved = await updateTasks(this.#db, rows.map((r) => r.id), this.#postgres).set({ sent_by: this.#instances.id })
        .where('sent_by', 'in', dead).where('state', 'in', IN_FLIGHT)
        .returning('device_id').execute();
      const devices = new Set(moved.map((m) => m.device_id));
      total += moved.length;
      for (const d of devices) void this.#outbox.deviceOnline(d);
      if (rows.length < BATCH) break;
    }
    if (total > 0) this.#logger.info({ count: total, from: dead }, 'took over tasks sent by managers that stopped');
    return total;
  }

  async #pumpLateQueued(): Promise<void> {
    const before = new Date(Date.now() - QUEUED_GRACE_MS).toISOString();
    const rows = await this.#db.selectFrom('tasks').select(sql<string>`distinct device_id`.as('device_id'))
      .where('state', '=', 'queued').where('created_at', '<', before).limit(5_000).execute();
    for (const { device_id: device } of rows) if (this.#online.isOnline(device)) void this.#outbox.pump(device);
  }
}
