import { CHANNEL_QOS, deviceTopic, type TaskAck, type TaskProgress, type TaskResult, type Vm } from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { Service } from '../../lifecycle.js';
import { NO_INVENTORY_WRITE, type DeviceInventory, type InventoryWrite, type VmChange } from '../devices/device-inventory.js';
import { storeAnswers, type Db, type Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import { toTask, type TaskRow } from './task-row.js';
import { CHUNK, lockTasks, recordLate, storeProgress, storeResults, taskIdOf, type Reported } from './task-report-statements.js';
import type { TaskOutbox } from './task-outbox.js';

/** A report the store refused this many times, alone, while it took others, is dropped. */
const MAX_REPORT_FAILURES = 3;

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
  /** For flushes of progress alone (Store.lazy): a lost one is replaced by the next report or the result. */
  readonly #lazy: Db;
  readonly #broker: Broker;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #flushMs: number;
  readonly #onApplied: (counts: { progress: number; results: number; late: number }) => void;
  readonly #inventory: DeviceInventory;
  /** Rows locked in one order before they are written: PostgreSQL, shared by managers (lockTasks). */
  readonly #lockFirst: boolean;
  #progress = new Map<string, Reported<TaskProgress>>();
  #results: Reported<TaskResult>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #stopped = false;
  /** Flushes in which a report failed on its own while others were stored. */
  readonly #failures = new WeakMap<Reported<{ taskId: string }>, number>();

  constructor(deps: {
    store: Store; broker: Broker; outbox: TaskOutbox; events: EventBus; inventory: DeviceInventory; logger: Logger; flushMs?: number;
    onApplied?: (counts: { progress: number; results: number; late: number }) => void;
  }) {
    this.#db = deps.store.write;
    this.#lazy = deps.store.lazy;
    this.#broker = deps.broker;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#flushMs = deps.flushMs ?? 20;
    this.#onApplied = deps.onApplied ?? (() => {});
    this.#inventory = deps.inventory;
    this.#lockFirst = deps.store.dialect === 'postgres';
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
      // One report the database refuses must not hold back every other device's: store them
      // one by one to find it. When some go in, the store works and the others are at fault;
      // when none does, it is the store, and nothing counts against the reports.
      const failed = progress.length + results.length > 1 && await storeAnswers(this.#db)
        ? await this.#oneByOne(progress, results)
        : { progress, results, storeWorks: false };
      this.#keepForRetry(failed.progress, failed.results, failed.storeWorks, err);
      this.#logger.error({ err, reports: progress.length + results.length, failed: failed.progress.length + failed.results.length }, 'storing task reports failed; will retry');
      this.#schedule(1000);
      return;
    }
    await this.#announce(applied);
  }

  /** Stores and announces each report alone, progress first, results in arrival order; returns those that failed. */
  async #oneByOne(progress: Reported<TaskProgress>[], results: Reported<TaskResult>[]) {
    const failed = { progress: [] as Reported<TaskProgress>[], results: [] as Reported<TaskResult>[], storeWorks: false };
    const alone = async (p: Reported<TaskProgress>[], r: Reported<TaskResult>[]): Promise<boolean> => {
      try {
        await this.#announce(await this.#store(p, r));
        failed.storeWorks = true;
        return true;
      } catch {
        return false;
      }
    };
    for (const p of progress) if (!(await alone([p], []))) failed.progress.push(p);
    for (const r of results) if (!(await alone([], [r]))) failed.results.push(r);
    return failed;
  }

  /**
   * Puts reports that were not stored back in the queue, for the next flush (newer progress
   * wins), unless the store refused one alone MAX_REPORT_FAILURES times while taking others:
   * that one is dropped, and a result among them stays unacknowledged (its device sends it
   * again, and it is tried again then).
   */
  #keepForRetry(progress: Reported<TaskProgress>[], results: Reported<TaskResult>[], storeWorks: boolean, err: unknown): void {
    const kept = (report: Reported<{ taskId: string }>): boolean => {
      const failures = (this.#failures.get(report) ?? 0) + (storeWorks ? 1 : 0);
      this.#failures.set(report, failures);
      if (failures < MAX_REPORT_FAILURES) return true;
      this.#logger.error({ err, device: report.deviceId, task: report.message.taskId }, 'the store refused this task report %d times while taking others; dropped', failures);
      return false;
    };
    for (const p of progress) if (kept(p) && !this.#progress.has(p.message.taskId)) this.#progress.set(p.message.taskId, p);
    this.#results.unshift(...results.filter(kept));
  }

  #schedule(delay = this.#flushMs): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
    // The manager's servers keep its process alive; a pending flush alone need not (stop() flushes).
    this.#timer.unref();
  }

  /**
   * Stores the batch; says what changed so that #announce can tell the world. Reports that
   * look alike (a fan-out's thousand "0 %" or "succeeded") are stored with one statement per
   * chunk, not one per report: the statements, not the rows, were the cost. Results, their
   * VMs in the inventory and any progress share one transaction. A flush of progress alone
   * that fits one statement needs none: the statement is atomic by itself, and BEGIN and
   * COMMIT were two of its three round trips to PostgreSQL (most flushes of a fan-out are
   * such: a task reports progress two to four times for its one result).
   *
   * A flush without results goes through the lazy writer: on PostgreSQL its commit does not
   * wait for the WAL flush, which was most of a progress statement's time in a cluster's
   * fan-out. Nothing is acknowledged on progress, and the result that follows it is stored
   * durably, in a commit that also makes every earlier one durable.
   */
  async #store(progress: readonly Reported<TaskProgress>[], results: readonly Reported<TaskResult>[]): Promise<Applied> {
    const acks = new Map<string, string[]>();
    for (const r of results) {
      // Acknowledged whatever happens below: stored now, stored before (a duplicate), or
      // not ours to store (unknown or another device's task, logged); re-sending cannot help.
      const list = acks.get(r.deviceId) ?? [];
      acks.set(r.deviceId, list);
      list.push(r.message.taskId);
    }
    const flush: Flush = {
      now: new Date().toISOString(), progress, results, alone: results.length === 0 && progress.length <= CHUNK,
      progressed: new Map(), changed: new Map(), ended: [], inventory: NO_INVENTORY_WRITE, late: 0,
    };
    const db = results.length === 0 ? this.#lazy : this.#db;
    if (flush.alone) await this.#work(db, flush);
    else await db.transaction().execute((tx) => this.#work(tx, flush));
    const finished = new Set<string>();
    for (const row of flush.ended) finished.add(row.device_id);
    return { progress: progress.length, results: results.length, late: flush.late, progressed: flush.progressed, changed: flush.changed, acks, finished, inventory: flush.inventory };
  }

  /**
   * The statements of one flush, in its transaction (or alone). A method, not a closure made
   * per flush, like the callbacks of this module and task-report-statements.ts: V8 keeps a
   * closure's optimized code only while one of its instances lives, so one made per call is
   * compiled again after every major GC (a cluster manager runs one every fan-out or two, and
   * TurboFan took 13 % of its CPU in the rounds, `perf`: docs/benchmarks.md).
   */
  async #work(db: Db, flush: Flush): Promise<void> {
    const { now, progress, results, progressed, changed, ended } = flush;
    if (this.#lockFirst && !flush.alone) await lockTasks(db, [...progress.map(taskIdOf), ...results.map(taskIdOf)]);
    for (const row of await storeProgress(db, now, progress, this.#lockFirst && flush.alone)) progressed.set(row.id, row);

    // The first result of each task in the batch may end it; a repeat is at most late news.
    const firsts = new Map<string, Reported<TaskResult>>();
    for (const r of results) if (!firsts.has(r.message.taskId)) firsts.set(r.message.taskId, r);
    for (const row of await storeResults(db, now, [...firsts.values()])) {
      changed.set(row.id, row);
      ended.push(row);
    }
    flush.inventory = await this.#inventory.applyInTransaction(db, vmChanges(ended));

    // In the order they came, as before: the first late result of a task is the one kept.
    const settled: Reported<TaskResult>[] = [];
    for (const r of results) if (firsts.get(r.message.taskId) !== r || !changed.has(r.message.taskId)) settled.push(r);
    const { late: lateRows, foreign } = await recordLate(db, now, settled);
    for (const row of lateRows) changed.set(row.id, row);
    flush.late = lateRows.length;
    for (const r of foreign) this.#logger.warn({ device: r.deviceId, task: r.message.taskId }, 'result for a task that is not this device\'s; ignored');
  }

  /** After the commit: live events, acknowledgements, and room in the windows of devices. */
  async #announce(applied: Applied): Promise<void> {
    this.#onApplied(applied);
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
  for (const row of [...ended].sort(byId)) {
    if (row.state !== 'succeeded') continue;
    if (row.result_vm !== null) changes.push({ deviceId: row.device_id, vm: JSON.parse(row.result_vm) as Vm });
    else if (row.kind === 'vm.delete' && row.vm_id !== null) changes.push({ deviceId: row.device_id, deletedVmId: row.vm_id });
  }
  return changes;
}

function byId(a: TaskRow, b: TaskRow): number {
  return a.id < b.id ? -1 : 1;
}

/** One flush's reports, and what its statements did with them (`#work`). */
interface Flush {
  now: string;
  progress: readonly Reported<TaskProgress>[];
  results: readonly Reported<TaskResult>[];
  /** Progress alone, in one statement: no transaction needed. */
  alone: boolean;
  /** The rows as the progress statements left them: announced before `changed` (a result may follow in it). */
  progressed: Map<string, TaskRow>;
  /** The rows as the statements left them (`returning *`), for the live stream: reading them back after the commit cost as much as storing them. */
  changed: Map<string, TaskRow>;
  ended: TaskRow[];
  inventory: InventoryWrite;
  late: number;
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
