import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Db, Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import { ACTIVE, loadTaskRows, toTask } from './task-row.js';
import type { TaskOutbox } from './task-outbox.js';

/**
 * Times out tasks whose deadline passed, wherever they are: still queued for an offline
 * device, sent and never started, or running and never finished. Tasks the device holds are
 * also cancelled there (the agent stops at its own copy of the deadline anyway; the cancel
 * covers a device whose clock runs slow). A result that arrives later is kept as `lateResult`.
 */
export class DeadlineSweep implements Service {
  readonly name = 'task deadline sweep';
  readonly #db: Db;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(deps: { store: Store; outbox: TaskOutbox; events: EventBus; logger: Logger; intervalMs?: number }) {
    this.#db = deps.store.write;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#intervalMs = deps.intervalMs ?? 1000;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => {
      this.#running ??= this.sweep().then(() => {}, (err: unknown) => this.#logger.error({ err }, 'deadline sweep failed')).finally(() => {
        this.#running = undefined;
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass; returns how many tasks it timed out. */
  async sweep(now = new Date()): Promise<number> {
    const at = now.toISOString();
    let total = 0;
    for (;;) {
      const due = await this.#db.selectFrom('tasks').select(['id', 'device_id', 'state', 'deadline_at'])
        .where('state', 'in', ACTIVE).where('deadline_at', '<=', at).orderBy('deadline_at').limit(500).execute();
      if (due.length === 0) return total;
      const timedOut: typeof due = [];
      await this.#db.transaction().execute(async (tx) => {
        for (const t of due) {
          const r = await tx.updateTable('tasks')
            .set({
              state: 'timed_out',
              finished_at: at,
              error_code: 'timed_out',
              error_message: `no result before the deadline ${t.deadline_at}; the task was ${describe(t.state)}`,
              updated_at: at,
            })
            .where('id', '=', t.id).where('state', 'in', ACTIVE).executeTakeFirst();
          if (r.numUpdatedRows > 0n) timedOut.push(t);
        }
      });
      total += timedOut.length;
      for (const row of await loadTaskRows(this.#db, timedOut.map((t) => t.id))) this.#events.emit({ type: 'task', task: toTask(row) });
      const devices = new Set<string>();
      for (const t of timedOut) {
        devices.add(t.device_id);
        if (t.state !== 'queued') await this.#outbox.sendCancel(t.device_id, t.id);
      }
      for (const d of devices) void this.#outbox.pump(d);
      if (timedOut.length > 0) this.#logger.info({ count: timedOut.length }, 'tasks timed out');
      if (due.length < 500) return total;
    }
  }
}

function describe(state: string): string {
  switch (state) {
    case 'queued': return 'still queued (the device did not come online)';
    case 'sent': return 'sent but never started by the device';
    default: return 'running on the device';
  }
}
