import type { Logger } from 'pino';
import type { Db, Store } from '../../store/store.js';
import type { DeviceActivity } from './device-activity.js';

/**
 * Devices the store calls online that have sent nothing for longer than `unresponsiveAfterMs`
 * (presence-bounds.ts) become `unresponsive`: their connection is still open (no will came),
 * but the agent is frozen or its reporter hangs. Their next message makes them online again
 * (the status buffer writes `presence: online` with every status). One conditional update per
 * pass, so two managers sweeping at once do no harm; still an exclusive job, so that each
 * change is announced once (docs/scale-out.md). `last_seen_at` is left as it is: it is the
 * time of the device's last message, not of this judgement.
 */
export class UnresponsiveSweep {
  readonly #db: Db;
  readonly #activity: DeviceActivity;
  readonly #logger: Logger;
  readonly #afterMs: number;
  readonly #onMarked: ((deviceId: string, at: string) => void) | undefined;

  /** `onMarked`: told of each device this sweep marked (the presence history records it). */
  constructor(deps: { store: Store; activity: DeviceActivity; logger: Logger; unresponsiveAfterMs: number; onMarked?: (deviceId: string, at: string) => void }) {
    this.#db = deps.store.write;
    this.#activity = deps.activity;
    this.#logger = deps.logger;
    this.#afterMs = deps.unresponsiveAfterMs;
    this.#onMarked = deps.onMarked;
  }

  /** One pass; returns how many devices it marked unresponsive. */
  async sweep(now = Date.now()): Promise<number> {
    const before = new Date(now - this.#afterMs).toISOString();
    const rows = await this.#db.updateTable('devices').set({ presence: 'unresponsive' })
      .where('presence', '=', 'online').where('last_seen_at', '<', before)
      .returning(['id', 'last_seen_at']).execute();
    const at = new Date(now).toISOString();
    for (const r of rows) {
      this.#activity.unresponsive(r.id, r.last_seen_at);
      this.#onMarked?.(r.id, at);
    }
    if (rows.length > 0) this.#logger.info({ count: rows.length, afterSec: this.#afterMs / 1000 }, 'devices that missed their status reports marked unresponsive');
    return rows.length;
  }
}
