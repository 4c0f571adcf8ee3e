import type { Logger } from 'pino';
import type { Db, Store } from '../../store/store.js';
import type { DeviceActivity } from './device-activity.js';

/**
 * Devices the store still calls online (or unresponsive) but that have not been heard from for
 * three status intervals plus 1.5 keepalives. On an external broker a device's last will can
 * be lost with the broker itself (a crash or restart: nobody publishes it), so "online" would
 * stay forever. Run as an
 * exclusive job on one manager (docs/scale-out.md); the embedded broker does not need it (its
 * connections and wills live in the manager).
 */
export class StalePresence {
  readonly #db: Db;
  readonly #activity: DeviceActivity;
  readonly #logger: Logger;
  readonly #silentMs: number;

  constructor(deps: { store: Store; activity: DeviceActivity; logger: Logger; statusIntervalSec: number; keepaliveSec: number }) {
    this.#db = deps.store.write;
    this.#activity = deps.activity;
    this.#logger = deps.logger;
    this.#silentMs = (deps.statusIntervalSec * 3 + deps.keepaliveSec * 1.5) * 1000;
  }

  /** One pass; returns how many devices it marked offline. */
  async sweep(now = Date.now()): Promise<number> {
    const before = new Date(now - this.#silentMs).toISOString();
    const rows = await this.#db.updateTable('devices').set({ presence: 'offline' })
      .where('presence', 'in', ['online', 'unresponsive']).where('last_seen_at', '<', before)
      .returning(['id', 'last_seen_at']).execute();
    for (const r of rows) this.#activity.cutOff(r.id, r.last_seen_at);
    if (rows.length > 0) this.#logger.info({ count: rows.length, silentSec: this.#silentMs / 1000 }, 'devices not heard from marked offline');
    return rows.length;
  }
}
