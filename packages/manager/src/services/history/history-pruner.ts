import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db, Store } from '../../store/store.js';
import { DEFAULT_RETENTION, isoOfMinute, minuteOf, type Retention } from './resolutions.js';

/** Devices per DELETE: each is a range of the primary key (device, resolution, bucket). */
const DEVICES_PER_DELETE = 500;

/**
 * Deletes history older than its retention; run hourly by one manager (`ExclusiveJob`).
 * Device rows are deleted device by device (in batches) so every delete is a range of the
 * primary key rather than a scan of the largest table. A device's latest presence
 * transition is kept whatever its age: it is the state the device has been in since. A
 * device that was decommissioned loses all its history at the next prune.
 */
export class HistoryPruner {
  readonly #db: Db;
  readonly #retention: Retention;
  readonly #now: () => number;
  readonly #logger: Logger;

  constructor(deps: { store: Store; logger: Logger; retention?: Retention; now?: () => number }) {
    this.#db = deps.store.write;
    this.#retention = deps.retention ?? DEFAULT_RETENTION;
    this.#now = deps.now ?? Date.now;
    this.#logger = deps.logger;
  }

  async prune(): Promise<{ deviceRows: number; fleetRows: number; transitions: number }> {
    const minute = minuteOf(this.#now());
    let deviceRows = 0;
    let fleetRows = 0;
    const ids = (await this.#db.selectFrom('devices').select('id').orderBy('id').execute()).map((r) => r.id);
    for (const r of [this.#retention.fine, this.#retention.coarse]) {
      const before = minute - r.keepMinutes;
      for (let i = 0; i < ids.length; i += DEVICES_PER_DELETE) {
        const res = await this.#db.deleteFrom('device_history')
          .where('device_id', 'in', ids.slice(i, i + DEVICES_PER_DELETE)).where('resolution', '=', r.minutes).where('bucket', '<', before)
          .executeTakeFirst();
        deviceRows += Number(res.numDeletedRows);
      }
      const res = await this.#db.deleteFrom('fleet_history').where('resolution', '=', r.minutes).where('bucket', '<', before).executeTakeFirst();
      fleetRows += Number(res.numDeletedRows);
    }
    // A decommissioned device's rows are out of reach of the per-device deletes above: they go
    // whole. Its ids come from the presence transitions (small; every reporting device has one).
    const gone = (await this.#db.selectFrom('device_presence_history').select('device_id').distinct()
      .where('device_id', 'not in', (eb) => eb.selectFrom('devices').select('id')).execute()).map((r) => r.device_id);
    let goneTransitions = 0;
    for (let i = 0; i < gone.length; i += DEVICES_PER_DELETE) {
      const chunk = gone.slice(i, i + DEVICES_PER_DELETE);
      deviceRows += Number((await this.#db.deleteFrom('device_history').where('device_id', 'in', chunk).executeTakeFirst()).numDeletedRows);
      goneTransitions += Number((await this.#db.deleteFrom('device_presence_history').where('device_id', 'in', chunk).executeTakeFirst()).numDeletedRows);
    }
    const cutoff = isoOfMinute(minute - this.#retention.presenceKeepMinutes);
    const res = await sql`delete from device_presence_history
      where at < ${cutoff}
        and at < (select max(h.at) from device_presence_history h where h.device_id = device_presence_history.device_id)`.execute(this.#db);
    const transitions = Number(res.numAffectedRows ?? 0) + goneTransitions;
    if (deviceRows + fleetRows + transitions > 0) this.#logger.info({ deviceRows, fleetRows, transitions }, 'history pruned');
    return { deviceRows, fleetRows, transitions };
  }
}
