import { CHANNEL_QOS, deviceTopic, type TaskAck, type TaskProgress, type TaskResult, type Vm } from '@pallas/protocol';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { Service } from '../../lifecycle.js';
import type { DeviceInventory, InventoryWrite, VmChange } from '../devices/device-inventory.js';
import type { Db, Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import { ACTIVE, toTask, type TaskRow } from './task-row.js';
import type { TaskOutbox } from './task-outbox.js';
import { storableText } from '../../store/storable-text.js';

interface Reported<T> {
  deviceId: string;
  message: T;
}

/**
 * Applies what devices report about their tasks. Reports are batched (one transaction every
 * `flushMs`) because a fan-out to thousands of devices brings thousands of them at once.
 * A result is acknowledged to the device only after the transaction that stores it has
 * committed; one that could not be stored is not acknowledged, so the agent sends it again.
 * A succeeded VM task's change goes to the device's inventory in that same transaction.
 */
export class TaskReports implements Service {
  readonly name = 'task reports';
  readonly #db: Db;
  readonly #broker: Broker;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #flushMs: number;
  readonly #onApplied: (counts: { progress: number; results: number; late: number }) => void;
  readonly #inventory: DeviceInventory;
  #progress = new Map<string, Reported<TaskProgress>>();
  #results: Reported<TaskResult>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: {
    store: Store; broker: Broker; outbox: TaskOutbox; events: EventBus; inventory: DeviceInventory; logger: Logger; flushMs?: number;
    onApplied?: (counts: { progress: number; results: number; late: number }) => void;
  }) {
    this.#db = deps.store.write;
    this.#broker = deps.broker;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#flushMs = deps.flushMs ?? 20;
    this.#onApplied = deps.onApplied ?? (() => {});
    this.#inventory = deps.inventory;
  }

  progress(deviceId: string, message: TaskProgress): void {
    // Only the latest progress of a task matters; the first one's only job (state → running)
    // is done by any of them.
    this.#progress.set(message.taskId, { deviceId, message });
    this.#schedule();
  }

  result(deviceId: string, message: TaskResult): void {
    this.#results.push({ deviceId, message });
    this.#schedule();
  }

  async start(): Promise<void> {
    this.#stopped = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.flush();
  }

  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#progress.size === 0 && this.#results.length === 0) return;
    const progress = this.#progress;
    const results = this.#results;
    this.#progress = new Map();
    this.#results = [];
    this.#flushing = this.#storeAndAnnounce([...progress.values()], results).finally(() => {
      this.#flushing = undefined;
    });
    await this.#flushing;
  }

  /**
   * Progress and results in one transaction; announced progress first, then results, so a task
   * that started and finished within one flush still shows `running` on the live stream before
   * its end. (Two transactions, one for each, cost a BEGIN, a read of the tasks' owners and a
   * COMMIT more per flush: each a round trip to PostgreSQL, whose socket writes were the
   * largest item of a cluster manager's CPU profile under fan-outs.)
   */
  async #storeAndAnnounce(progress: Reported<TaskProgress>[], results: Reported<TaskResult>[]): Promise<void> {
    if (progress.length === 0 && results.length === 0) return;
    let applied: Applied;
    try {
      applied = await this.#store(progress, results);
    } catch (err) {
      // Nothing was committed: keep it all for the next try (newer progress wins).
      for (const x of progress) if (!this.#progress.has(x.message.taskId)) this.#progress.set(x.message.taskId, x);
      this.#results.unshift(...results);
      this.#logger.error({ err }, 'storing task reports failed; will retry');
      this.#schedule(1000);
      return;
    }
    await this.#announce(applied);
  }

  #schedule(delay = this.#flushMs): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
  }

  /**
   * One transaction for the batch; says what changed so that #announce can tell the world.
   * Reports that look alike (a fan-out's thousand "0 %" or "succeeded") are stored with one
   * statement per chunk, not one per report: the statements, not the rows, were the cost.
   */
  async #store(progress: readonly Reported<TaskProgress>[], results: readonly Reported<TaskResult>[]): Promise<Applied> {
    const now = new Date().toISOString();
    // The rows as the statements left them (`returning *`), for the live stream: reading them
    // back after the commit cost as much as storing them.
    const changed = new Map<string, TaskRow>();
    /** The rows as the progress statements left them: announced before `changed` (a result may follow in it). */
    const progressed = new Map<string, TaskRow>();
    const acks = new Map<string, string[]>();
    const ended: TaskRow[] = [];
    let inventory: InventoryWrite = { changes: [], written: new Map() };
    let late = 0;
    await this.#db.transaction().execute(async (tx) => {
      // A device reports only on its own tasks: whose each task is, read once for the batch.
      const owners = new Map<string, { device_id: string; state: string }>();
      const ids = [...new Set([...progress, ...results].map((r) => r.message.taskId))];
      for (let i = 0; i < ids.length; i += CHUNK) {
        const rows = await tx.selectFrom('tasks').select(['id', 'device_id', 'state']).where('id', 'in', ids.slice(i, i + CHUNK)).execute();
        for (const r of rows) owners.set(r.id, r);
      }
      const isActive = (taskId: string, deviceId: string): boolean => {
        const o = owners.get(taskId);
        return o !== undefined && o.device_id === deviceId && (ACTIVE as readonly string[]).includes(o.state);
      };

      for (const group of groupBy(progress.filter((p) => isActive(p.message.taskId, p.deviceId)), (p) => JSON.stringify([p.message.pct, p.message.message ?? null]))) {
        const { pct, message } = group[0]!.message;
        for (let i = 0; i < group.length; i += CHUNK) {
          const updated = await tx.updateTable('tasks')
            .set({ state: 'running', started_at: sql<string>`coalesce(started_at, ${now})`, progress_pct: pct, progress_message: storableText(message) ?? null, updated_at: now })
            .where('id', 'in', group.slice(i, i + CHUNK).map((p) => p.message.taskId)).where('state', 'in', ACTIVE)
            .returningAll().execute();
          for (const r of updated) progressed.set(r.id, r);
        }
      }

      const fresh: Reported<TaskResult>[] = [];
      const freshIds = new Set<string>();
      const settled: Reported<TaskResult>[] = [];
      for (const r of results) {
        const list = acks.get(r.deviceId) ?? [];
        acks.set(r.deviceId, list);
        // Acknowledged whatever happens below: stored now, stored before (a duplicate), or
        // not ours to store (unknown or another device's task, logged); re-sending cannot help.
        list.push(r.message.taskId);
        if (isActive(r.message.taskId, r.deviceId) && !freshIds.has(r.message.taskId)) {
          freshIds.add(r.message.taskId);
          fresh.push(r);
        } else settled.push(r);
      }
      // Results that differ only in their VM share a statement; the VM goes in by CASE.
      for (const group of groupBy(fresh, (r) => JSON.stringify([r.message.outcome, r.message.error?.code ?? null, r.message.error?.message ?? null]))) {
        const { outcome, error } = group[0]!.message;
        for (let i = 0; i < group.length; i += CHUNK) {
          const chunk = group.slice(i, i + CHUNK);
          const withVm = chunk.filter((r) => r.message.vm);
          const updated = await tx.updateTable('tasks')
            .set({
              state: outcome,
              finished_at: now,
              started_at: sql<string>`coalesce(started_at, ${now})`,
              error_code: error?.code ?? null,
              error_message: storableText(error?.message) ?? null,
              result_vm: withVm.length === 0 ? null : sql<string>`case id ${sql.join(withVm.map((r) => sql`when ${r.message.taskId} then ${JSON.stringify(r.message.vm)}`), sql` `)} else null end`,
              vm_id: withVm.length === 0 ? sql<string>`vm_id` : sql<string>`case id ${sql.join(withVm.map((r) => sql`when ${r.message.taskId} then ${r.message.vm!.id}`), sql` `)} else vm_id end`,
              progress_pct: outcome === 'succeeded' ? 100 : sql<number>`progress_pct`,
              updated_at: now,
            })
            .where('id', 'in', chunk.map((r) => r.message.taskId)).where('state', 'in', ACTIVE)
            .returningAll().execute();
          for (const r of updated) {
            changed.set(r.id, r);
            ended.push(r);
          }
        }
      }
      inventory = await this.#inventory.applyInTransaction(tx, vmChanges(ended));

      for (const { deviceId, message: res } of settled) {
        // Already final. The same result again (re-sent before our ack arrived) is no news; a
        // different one (the device finished after the task timed out) is kept for the record.
        const lateResult = JSON.stringify({ outcome: res.outcome, at: now, ...(res.error ? { error: res.error } : {}) });
        const l = await tx.updateTable('tasks').set({ late_result: lateResult, updated_at: now })
          .where('id', '=', res.taskId).where('device_id', '=', deviceId).where('late_result', 'is', null)
          .where('state', 'not in', ACTIVE).where('state', '!=', res.outcome)
          .returningAll().executeTakeFirst();
        if (l) {
          late++;
          changed.set(res.taskId, l);
        } else if (owners.get(res.taskId)?.device_id !== deviceId) {
          this.#logger.warn({ device: deviceId, task: res.taskId }, 'result for a task that is not this device\'s; ignored');
        }
      }
    });
    return { progress: progress.length, results: results.length, late, progressed, changed, acks, finished: new Set(ended.map((r) => r.device_id)), inventory };
  }

  /** After the commit: live events, acknowledgements, and room in the windows of devices. */
  async #announce(applied: Applied): Promise<void> {
    this.#onApplied(applied);
    const byId = (a: TaskRow, b: TaskRow) => (a.id < b.id ? -1 : 1);
    for (const row of [...applied.progressed.values()].sort(byId)) this.#events.emit({ type: 'task', task: toTask(row) });
    for (const row of [...applied.changed.values()].sort(byId)) this.#events.emit({ type: 'task', task: toTask(row) });
    this.#inventory.committed(applied.inventory);
    // Written all at once, then waited for together. One after the other, each ack went to the
    // broker in a TCP write of its own (the MQTT client uncorks its socket on the next tick,
    // before the await resumes): 500 writes, and as many wake-ups of the broker, for a flush
    // of 500 results, where one write carries them all.
    const acking: Promise<void>[] = [];
    for (const [deviceId, taskIds] of applied.acks) {
      for (let i = 0; i < taskIds.length; i += 1000) {
        const ack: TaskAck = { taskIds: taskIds.slice(i, i + 1000) };
        acking.push(this.#broker.publish(deviceTopic(deviceId, 'cmd/task-ack'), JSON.stringify(ack), { qos: CHANNEL_QOS['cmd/task-ack'] })
          .catch((err: unknown) => this.#logger.warn({ err, device: deviceId }, 'could not acknowledge task results; the device will send them again')));
      }
    }
    await Promise.all(acking);
    for (const deviceId of applied.finished) void this.#outbox.pump(deviceId);
  }
}

/**
 * What succeeded VM tasks did to their devices' VMs, in task id order (creation order: two
 * tasks on one VM in one batch apply as they ran). A create, deploy, power or update returned
 * the VM as it now is; a delete removed it.
 */
function vmChanges(ended: readonly TaskRow[]): VmChange[] {
  const changes: VmChange[] = [];
  for (const row of [...ended].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (row.state !== 'succeeded') continue;
    if (row.result_vm !== null) changes.push({ deviceId: row.device_id, vm: JSON.parse(row.result_vm) as Vm });
    else if (row.kind === 'vm.delete' && row.vm_id !== null) changes.push({ deviceId: row.device_id, deletedVmId: row.vm_id });
  }
  return changes;
}

/** Rows per statement: well under SQLite's and PostgreSQL's limits on bound parameters. */
const CHUNK = 400;

function groupBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

interface Applied {
  progress: number;
  results: number;
  late: number;
  progressed: Map<string, TaskRow>;
  changed: Map<string, TaskRow>;
  acks: Map<string, string[]>;
  finished: Set<string>;
  inventory: InventoryWrite;
}
