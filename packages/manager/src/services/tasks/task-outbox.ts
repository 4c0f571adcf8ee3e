import { CHANNEL_QOS, artifactIdsOf, deviceTopic, type ArtifactGrant, type TaskCommand, type TaskOperation } from '@pallas/protocol';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { Db, Store } from '../../store/store.js';
import type { OnlineDevices } from '../devices/online-devices.js';
import type { EventBus } from '../live/event-bus.js';
import { testHold } from '../../test-hold.js';
import { ACTIVE, IN_FLIGHT, toTask, type TaskRow } from './task-row.js';

/** How many tasks a device may have sent or running at once. */
export const DEFAULT_WINDOW = 16;

/**
 * Grants for the artifacts of many tasks at once (signed manifest and a fresh download URL for
 * each task's device), keyed by task id. The artifacts service provides it; the outbox only
 * knows that a `run` naming artifacts must carry them.
 */
export type ArtifactGrants = (tasks: ReadonlyArray<{ taskId: string; deviceId: string; artifactIds: readonly string[] }>) => Promise<Map<string, ArtifactGrant[]>>;

/** Devices handled per delivery round: bounds one round's queries and bound parameters. */
const ROUND_DEVICES = 500;

/**
 * Each device's outbox is its queued rows in the tasks table. `pump` moves the oldest of them
 * into the device's window (sent or running, at most `window`) and publishes them; it runs
 * when a task ends, when the device comes online, and for new tasks that could not be sent as
 * they were created (`markNewSent`: most new tasks of connected devices are).
 *
 * Delivery runs in rounds, one round at a time: a round takes every device asked for since
 * the last one (up to `ROUND_DEVICES`), reads their windows and queued tasks with a few queries
 * for all of them, marks what it sends in one statement, then publishes. So a thousand devices
 * coming back costs a few queries per 500 devices rather than several per device (and
 * thousands of callers never queue on the database connection), and since rounds never
 * overlap, two of them never send the same task.
 */
export class TaskOutbox {
  readonly #db: Db;
  readonly #broker: Broker;
  readonly #online: OnlineDevices;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #window: number;
  readonly #grants: ArtifactGrants | undefined;
  /** This manager's id, written in `sent_by` of what it sends (several managers: docs/scale-out.md). */
  readonly #instanceId: string | null;
  /** Devices to fill the window of, and devices that (re)connected, waiting for a round. */
  readonly #toPump = new Set<string>();
  readonly #toResend = new Set<string>();
  /** Settles once a pass has served everything asked for since it was made. */
  #waiting: Promise<void> | undefined;
  #resolveWaiting: () => void = () => {};
  #running = false;

  constructor(deps: {
    store: Store; broker: Broker; online: OnlineDevices; events: EventBus; logger: Logger; window?: number; grants?: ArtifactGrants; instanceId?: string;
  }) {
    this.#db = deps.store.write;
    this.#broker = deps.broker;
    this.#online = deps.online;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#window = deps.window ?? DEFAULT_WINDOW;
    this.#grants = deps.grants;
    this.#instanceId = deps.instanceId ?? null;
  }

  /** Sends the device as many queued tasks as its window has room for, if it is online. */
  pump(deviceId: string): Promise<void> {
    this.#toPump.add(deviceId);
    return this.#schedule();
  }

  /**
   * The device (re)connected: whatever it was sent before may have been lost with the old
   * connection, so in-flight tasks and pending cancels go again (the agent's journal drops
   * duplicates), then the window is filled.
   */
  deviceOnline(deviceId: string): Promise<void> {
    this.#toResend.add(deviceId);
    this.#toPump.add(deviceId);
    return this.#schedule();
  }

  /**
   * New tasks, in the transaction that inserts them: those whose device is online, has no
   * queued task before them and room in its window come back marked sent by this manager, the
   * rest as they were (queued). `deliverNew` then publishes the first once the transaction has
   * committed and hands the rest to `pump`.
   *
   * Why at creation: a delivery round after the insert cost three statements per 500 devices
   * (window, queued tasks, the mark) and a second live event per task, on the event loop that
   * is busy answering the request and announcing its tasks. On PostgreSQL, a fan-out's last
   * devices were marked sent 0.5-0.9 s after their tasks were created, against 0.1-0.2 s on
   * one manager with SQLite (docs/benchmarks.md, scenario cluster). The crash window is the
   * one a round has: marked sent, maybe not published; a reconnect or the stranded-tasks sweep
   * sends such a task again, and the agent's journal runs it once.
   */
  async markNewSent(tx: Db, rows: readonly TaskRow[]): Promise<TaskRow[]> {
    const devices = [...new Set(rows.map((r) => r.device_id))].filter((d) => this.#online.isOnline(d));
    if (devices.length === 0) return [...rows];
    const queued = new Map<string, number>();
    const busy = new Map<string, number>();
    for (let i = 0; i < devices.length; i += ROUND_DEVICES) {
      const counts = await tx.selectFrom('tasks').select(['device_id', 'state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('device_id', 'in', devices.slice(i, i + ROUND_DEVICES)).where('state', 'in', ACTIVE).groupBy(['device_id', 'state']).execute();
      for (const c of counts) {
        const into = c.state === 'queued' ? queued : busy;
        into.set(c.device_id, (into.get(c.device_id) ?? 0) + Number(c.n));
      }
    }
    const online = new Set(devices);
    const now = new Date().toISOString();
    return rows.map((row) => {
      const d = row.device_id;
      // In creation order: once one of a device's new tasks stays queued, so do those after it.
      if (!online.has(d) || (queued.get(d) ?? 0) > 0 || (busy.get(d) ?? 0) >= this.#window) {
        queued.set(d, (queued.get(d) ?? 0) + 1);
        return row;
      }
      busy.set(d, (busy.get(d) ?? 0) + 1);
      return { ...row, state: 'sent', sent_at: now, sent_by: this.#instanceId, updated_at: now };
    });
  }

  /**
   * After the commit of new tasks (`markNewSent`): publishes those marked sent, and fills the
   * windows of the devices whose tasks stayed queued. Not waited for by whoever created them.
   */
  async deliverNew(rows: readonly TaskRow[]): Promise<void> {
    const sent = rows.filter((r) => r.state === 'sent');
    for (const row of rows) if (row.state === 'queued') void this.pump(row.device_id);
    if (sent.length === 0) return;
    // Crash tests stop here: marked sent, not yet published (docs/testing.md).
    const held = testHold('manager.task-sent', { taskIds: sent.map((r) => r.id) });
    if (held) await held;
    try {
      const commands = await this.#runCommands(sent);
      await Promise.all(sent.map((row) => this.#publish(row.device_id, commands.get(row.id)!)));
    } catch (err) {
      this.#logger.error({ err, tasks: sent.length }, 'task delivery failed; the tasks are sent again when their device reconnects');
    }
  }

  /** Asks the device to stop a task; if it is offline, `deviceOnline` asks again later. */
  async sendCancel(deviceId: string, taskId: string): Promise<void> {
    if (this.#online.isOnline(deviceId)) await this.#publish(deviceId, { type: 'cancel', taskId });
  }

  #schedule(): Promise<void> {
    if (!this.#waiting) {
      this.#waiting = new Promise<void>((resolve) => { this.#resolveWaiting = resolve; });
      // On the next turn, so that this tick's other callers join the same round.
      if (!this.#running) setImmediate(() => void this.#drain());
    }
    return this.#waiting;
  }

  /** Serves what was asked until nothing is: each pass takes a snapshot and settles its callers. */
  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting) {
        const settle = this.#resolveWaiting;
        this.#waiting = undefined;
        const resend = [...this.#toResend];
        const pump = [...this.#toPump];
        this.#toResend.clear();
        this.#toPump.clear();
        // A round's publishes are not waited for before the next round reads and marks its
        // tasks: on an external broker each waits for the broker's acknowledgement, and a
        // fan-out's rounds went one broker round trip after another. They are all waited for
        // before this pass's callers are settled; the client keeps them in order.
        const publishing: Promise<void>[] = [];
        for (let i = 0; i < Math.max(resend.length, pump.length); i += ROUND_DEVICES) {
          try {
            await this.#round(resend.slice(i, i + ROUND_DEVICES), pump.slice(i, i + ROUND_DEVICES), publishing);
          } catch (err) {
            this.#logger.error({ err }, 'task delivery failed; it is retried when a device reconnects or a task changes');
          }
        }
        await Promise.all(publishing);
        settle();
      }
    } finally {
      this.#running = false;
    }
  }

  /** Reads, marks and publishes one round; the publishes' promises go into `publishing`. */
  async #round(resendTo: string[], pumpFor: string[], publishing: Promise<void>[]): Promise<void> {
    // Loops rather than callbacks: a closure made per round is compiled again after every
    // major GC (see task-reports.ts, `#work`), and this runs after every flush of results.
    const resend = this.#onlineOf(resendTo);
    if (resend.length > 0) {
      const rows = await this.#db.selectFrom('tasks').selectAll()
        .where('device_id', 'in', resend).where('state', 'in', IN_FLIGHT).orderBy('id').execute();
      const commands = await this.#runCommands(rows);
      for (const row of rows) {
        publishing.push(this.#publish(row.device_id, commands.get(row.id)!));
        if (row.cancel_requested === 1) publishing.push(this.#publish(row.device_id, { type: 'cancel', taskId: row.id }));
      }
    }
    const devices = this.#onlineOf(pumpFor);
    if (devices.length === 0) return;
    const now = new Date().toISOString();
    // The oldest `window` queued tasks of each device (a device with a thousand queued tasks
    // yields no more than its window). Tasks past their deadline stay for the deadline sweep.
    // Read before the tasks in flight: most pumps follow a result and find nothing queued (a
    // fan-out), and then this one read is the whole round.
    const ranked = this.#db.selectFrom('tasks').selectAll()
      .select(sql<number>`row_number() over (partition by device_id order by id)`.as('rank'))
      .where('device_id', 'in', devices).where('state', '=', 'queued').where('deadline_at', '>', now)
      .as('ranked');
    const candidates = await this.#db.selectFrom(ranked).selectAll()
      .where('rank', '<=', this.#window).orderBy('id').execute();
    if (candidates.length === 0) return;
    const waiting = new Set<string>();
    for (const r of candidates) waiting.add(r.device_id);
    const busy = await this.#db.selectFrom('tasks').select(['device_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('device_id', 'in', [...waiting]).where('state', 'in', IN_FLIGHT).groupBy('device_id').execute();
    const room = new Map<string, number>();
    for (const d of waiting) room.set(d, this.#window);
    for (const b of busy) room.set(b.device_id, this.#window - Number(b.n));
    const rows: typeof candidates = [];
    for (const r of candidates) if (r.rank <= room.get(r.device_id)!) rows.push(r);
    if (rows.length === 0) return;
    // Marked sent before publishing: if the publish is lost, the next connect sends it again.
    // Only the rows this update moved are published: one cancelled since the select above
    // is no longer queued, and the device must not run it.
    const marked = new Set<string>();
    for (let i = 0; i < rows.length; i += 500) {
      const moved = await this.#db.updateTable('tasks').set({ state: 'sent', sent_at: now, sent_by: this.#instanceId, updated_at: now })
        .where('id', 'in', rows.slice(i, i + 500).map(idOf)).where('state', '=', 'queued')
        .returning('id').execute();
      for (const { id } of moved) marked.add(id);
    }
    const sent: TaskRow[] = [];
    for (const { rank: _rank, ...row } of rows) if (marked.has(row.id)) sent.push({ ...row, state: 'sent', sent_at: now, sent_by: this.#instanceId, updated_at: now });
    // Crash tests stop here: marked sent, not yet published (docs/testing.md).
    const held = testHold('manager.task-sent', { taskIds: [...marked] });
    if (held) await held;
    const commands = await this.#runCommands(sent);
    for (const row of sent) {
      this.#events.emit({ type: 'task', task: toTask(row) });
      publishing.push(this.#publish(row.device_id, commands.get(row.id)!));
    }
  }

  #onlineOf(deviceIds: readonly string[]): string[] {
    const online: string[] = [];
    for (const d of deviceIds) if (this.#online.isOnline(d)) online.push(d);
    return online;
  }

  /**
   * The `run` commands of a round's rows. Those whose operation names artifacts carry grants,
   * made in one batch for the round and fresh for each send: a resend after a reconnect gets a
   * new URL, so an expired one is never handed out again.
   */
  async #runCommands(rows: readonly TaskRow[]): Promise<Map<string, TaskCommand>> {
    const commands = new Map<string, TaskCommand & { type: 'run' }>();
    const needing: { taskId: string; deviceId: string; artifactIds: string[] }[] = [];
    for (const row of rows) {
      const command = runCommand(row);
      commands.set(row.id, command);
      const artifactIds = artifactIdsOf(command.operation);
      if (artifactIds.length > 0) needing.push({ taskId: row.id, deviceId: row.device_id, artifactIds });
    }
    if (needing.length > 0 && this.#grants) {
      const grants = await this.#grants(needing);
      for (const { taskId } of needing) {
        const list = grants.get(taskId);
        if (list && list.length > 0) commands.get(taskId)!.artifacts = list;
      }
    }
    return commands;
  }

  async #publish(deviceId: string, command: TaskCommand): Promise<void> {
    try {
      await this.#broker.publish(deviceTopic(deviceId, 'cmd/task'), JSON.stringify(command), { qos: CHANNEL_QOS['cmd/task'] });
    } catch (err) {
      this.#logger.warn({ err, device: deviceId, task: command.taskId }, 'could not publish a task command; it is sent again when the device reconnects');
    }
  }
}

function idOf(row: { id: string }): string {
  return row.id;
}

function runCommand(row: TaskRow): TaskCommand & { type: 'run' } {
  return {
    type: 'run',
    taskId: row.id,
    operation: JSON.parse(row.operation) as TaskOperation,
    timeoutMs: Math.max(0, Date.parse(row.deadline_at) - Date.now()),
  };
}
