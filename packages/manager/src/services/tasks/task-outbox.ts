import { deviceTopic, type TaskCommand, type TaskOperation } from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { Db, Store } from '../../store/store.js';
import type { OnlineDevices } from '../devices/online-devices.js';
import type { EventBus } from '../live/event-bus.js';
import { IN_FLIGHT, toTask, type TaskRow } from './task-row.js';

/** How many tasks a device may have sent or running at once. */
export const DEFAULT_WINDOW = 16;

/**
 * Each device's outbox is its queued rows in the tasks table. `pump` moves the oldest of them
 * into the device's window (sent or running, at most `window`) and publishes them; it runs
 * when a task is created, when one ends and when the device comes online. Pumps of one device
 * run one after another, so two of them never send the same task.
 */
export class TaskOutbox {
  readonly #db: Db;
  readonly #broker: Broker;
  readonly #online: OnlineDevices;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #window: number;
  readonly #chains = new Map<string, Promise<void>>();

  constructor(deps: { store: Store; broker: Broker; online: OnlineDevices; events: EventBus; logger: Logger; window?: number }) {
    this.#db = deps.store.write;
    this.#broker = deps.broker;
    this.#online = deps.online;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#window = deps.window ?? DEFAULT_WINDOW;
  }

  /** Sends the device as many queued tasks as its window has room for, if it is online. */
  pump(deviceId: string): Promise<void> {
    return this.#serial(deviceId, () => this.#pump(deviceId));
  }

  /**
   * The device (re)connected: whatever it was sent before may have been lost with the old
   * connection, so in-flight tasks and pending cancels go again (the agent's journal drops
   * duplicates), then the window is filled.
   */
  deviceOnline(deviceId: string): Promise<void> {
    return this.#serial(deviceId, async () => {
      const rows = await this.#db.selectFrom('tasks').selectAll()
        .where('device_id', '=', deviceId).where('state', 'in', IN_FLIGHT).orderBy('id').execute();
      for (const row of rows) {
        await this.#publish(deviceId, runCommand(row));
        if (row.cancel_requested === 1) await this.#publish(deviceId, { type: 'cancel', taskId: row.id });
      }
      await this.#pump(deviceId);
    });
  }

  /** Asks the device to stop a task; if it is offline, `deviceOnline` asks again later. */
  async sendCancel(deviceId: string, taskId: string): Promise<void> {
    if (this.#online.isOnline(deviceId)) await this.#publish(deviceId, { type: 'cancel', taskId });
  }

  async #pump(deviceId: string): Promise<void> {
    if (!this.#online.isOnline(deviceId)) return;
    const now = new Date().toISOString();
    const inFlight = await this.#db.selectFrom('tasks').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('device_id', '=', deviceId).where('state', 'in', IN_FLIGHT).executeTakeFirstOrThrow();
    const room = this.#window - Number(inFlight.n);
    if (room <= 0) return;
    // Tasks past their deadline stay for the deadline sweep, which times them out.
    const rows = await this.#db.selectFrom('tasks').selectAll()
      .where('device_id', '=', deviceId).where('state', '=', 'queued').where('deadline_at', '>', now)
      .orderBy('id').limit(room).execute();
    if (rows.length === 0) return;
    const ids = rows.map((r) => r.id);
    // Marked sent before publishing: if the publish is lost, the next connect sends it again.
    await this.#db.updateTable('tasks').set({ state: 'sent', sent_at: now, updated_at: now })
      .where('id', 'in', ids).where('state', '=', 'queued').execute();
    for (const row of rows) {
      const sent = { ...row, state: 'sent', sent_at: now, updated_at: now };
      this.#events.emit({ type: 'task', task: toTask(sent) });
      await this.#publish(deviceId, runCommand(sent));
    }
  }

  async #publish(deviceId: string, command: TaskCommand): Promise<void> {
    try {
      await this.#broker.publish(deviceTopic(deviceId, 'cmd/task'), JSON.stringify(command), { qos: 1 });
    } catch (err) {
      this.#logger.warn({ err, device: deviceId, task: command.taskId }, 'could not publish a task command; it is sent again when the device reconnects');
    }
  }

  #serial(deviceId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(deviceId) ?? Promise.resolve();
    const next = previous.then(work).catch((err: unknown) => {
      this.#logger.error({ err, device: deviceId }, 'task delivery failed; it is retried when the device reconnects or a task changes');
    });
    this.#chains.set(deviceId, next);
    void next.finally(() => {
      if (this.#chains.get(deviceId) === next) this.#chains.delete(deviceId);
    });
    return next;
  }
}

function runCommand(row: TaskRow): TaskCommand {
  return {
    type: 'run',
    taskId: row.id,
    operation: JSON.parse(row.operation) as TaskOperation,
    timeoutMs: Math.max(0, Date.parse(row.deadline_at) - Date.now()),
  };
}
