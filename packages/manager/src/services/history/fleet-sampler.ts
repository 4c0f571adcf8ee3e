import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db, Store } from '../../store/store.js';
import { DEFAULT_RETENTION, bucketOf, isoOfMinute, minuteOf, type Retention } from './resolutions.js';

/** A minute is counted this long after it ended: task results committed late still land in it. */
const SETTLE_MS = 30_000;
/** After a long stop, minutes further back than this are not counted (their tasks may be pruned). */
const CATCH_UP_MINUTES = 60;

interface FleetRow { metric: string; bucket: number; label: string; min: number; max: number; sum: number; samples: number }

/**
 * The fleet's history, sampled once a minute by the one manager that holds its lease
 * (`ExclusiveJob`): devices by presence (a gauge), tasks that ended by outcome, kind and
 * error code, and enrollments (counts of each minute). It also reconciles device presence
 * transitions with the devices table, and rolls closed minutes up into 15-minute buckets.
 * Where each step got is kept in `history_marks`, so another manager takes over from there.
 */
export class FleetSampler {
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

  async sample(): Promise<void> {
    const now = this.#now();
    const minute = minuteOf(now);
    await this.#samplePresence(minute, new Date(now).toISOString());
    const counted = await this.#countEnded(minuteOf(now - SETTLE_MS));
    await this.#rollUp(Math.min(counted, minute));
  }

  /** Devices by presence now, as one more sample of this minute's gauge. */
  async #samplePresence(minute: number, at: string): Promise<void> {
    const rows = await this.#db.selectFrom('devices').select(['presence', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('presence').execute();
    const fine = this.#retention.fine.minutes;
    // Online and offline are always sampled, at 0 too, so a bucket's minimum can be 0.
    const counts = new Map<string, number>([['online', 0], ['offline', 0]]);
    for (const r of rows) counts.set(r.presence, Number(r.n));
    await upsertFleet(this.#db, fine, [...counts].map(([label, n]) =>
      ({ metric: 'presence', bucket: bucketOf(minute, fine), label, min: n, max: n, sum: n, samples: 1 })), 'merge');
    // Presence changed without a status flush (a sweep, a start that marked all offline, a
    // transition another manager's cache hid): record the device's current state now.
    await sql`insert into device_presence_history (device_id, at, state)
      select d.id, cast(${at} as text), d.presence from devices d
      where d.presence <> coalesce((select h.state from device_presence_history h where h.device_id = d.id order by h.at desc limit 1), '')
      on conflict do nothing`.execute(this.#db);
  }

  /** Counts tasks that ended and enrollments in each closed minute before `until`; returns how far it got. */
  async #countEnded(until: number): Promise<number> {
    const fine = this.#retention.fine.minutes;
    let from = await this.#mark('fleet-counted') ?? until - 1;
    from = Math.max(from, until - CATCH_UP_MINUTES);
    for (let m = from; m < until; m++) {
      const [start, end] = [isoOfMinute(m), isoOfMinute(m + 1)];
      const tasks = await this.#db.selectFrom('tasks')
        .select(['state', 'kind', 'error_code', (eb) => eb.fn.countAll<number>().as('n')])
        .where('finished_at', '>=', start).where('finished_at', '<', end)
        .groupBy(['state', 'kind', 'error_code']).execute();
      const enrolled = await this.#db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n'))
        .where('enrolled_at', '>=', start).where('enrolled_at', '<', end).executeTakeFirstOrThrow();
      const count = (metric: string, label: string, n: number): FleetRow => ({ metric, bucket: m, label, min: n, max: n, sum: n, samples: 1 });
      const rows = tasks.map((t) => count('tasks', `${t.state}/${t.kind}/${t.error_code ?? ''}`, Number(t.n)));
      if (Number(enrolled.n) > 0) rows.push(count('enrollments', '', Number(enrolled.n)));
      await this.#db.transaction().execute(async (tx) => {
        await upsertFleet(tx, fine, rows, 'replace');
        await this.#setMark(tx, 'fleet-counted', m + 1);
      });
    }
    return Math.max(from, until);
  }

  /** Rolls closed 15-minute windows before `until` (a minute) from fine rows into coarse ones. */
  async #rollUp(until: number): Promise<void> {
    const { fine, coarse } = this.#retention;
    const end = bucketOf(until, coarse.minutes);
    let from = await this.#mark('fleet-rolled-up');
    if (from === undefined) {
      const first = await this.#db.selectFrom('fleet_history').select((eb) => eb.fn.min<number>('bucket').as('b'))
        .where('resolution', '=', fine.minutes).executeTakeFirst();
      from = first?.b === null || first?.b === undefined ? end : bucketOf(Number(first.b), coarse.minutes);
    }
    if (from >= end) return;
    const step = coarse.minutes;
    const rows = await this.#db.selectFrom('fleet_history')
      .select(['metric', 'label', sql<number>`bucket / ${sql.lit(step)} * ${sql.lit(step)}`.as('b'),
        (eb) => eb.fn.min<number>('min').as('min'), (eb) => eb.fn.max<number>('max').as('max'),
        (eb) => eb.fn.sum<number>('sum').as('sum'), (eb) => eb.fn.sum<number>('samples').as('samples')])
      .where('resolution', '=', fine.minutes).where('bucket', '>=', from).where('bucket', '<', end)
      .groupBy(['metric', 'label', sql`bucket / ${sql.lit(step)} * ${sql.lit(step)}`]).execute();
    await this.#db.transaction().execute(async (tx) => {
      await upsertFleet(tx, step, rows.map((r) => ({
        metric: r.metric, label: r.label, bucket: Number(r.b), min: Number(r.min), max: Number(r.max), sum: Number(r.sum), samples: Number(r.samples),
      })), 'replace');
      await this.#setMark(tx, 'fleet-rolled-up', end);
    });
    this.#logger.debug({ from: isoOfMinute(from), to: isoOfMinute(end), rows: rows.length }, 'fleet history rolled up');
  }

  async #mark(name: string): Promise<number | undefined> {
    const row = await this.#db.selectFrom('history_marks').select('bucket').where('name', '=', name).executeTakeFirst();
    return row ? Number(row.bucket) : undefined;
  }

  async #setMark(db: Db, name: string, bucket: number): Promise<void> {
    await db.insertInto('history_marks').values({ name, bucket })
      .onConflict((oc) => oc.column('name').doUpdateSet({ bucket })).execute();
  }
}

/**
 * Writes fleet rows: `replace` for counts recomputed from the source (running it twice gives
 * the same row), `merge` for gauge samples (each adds one more sample to the bucket).
 */
async function upsertFleet(db: Db, resolution: number, rows: FleetRow[], mode: 'replace' | 'merge'): Promise<void> {
  if (rows.length === 0) return;
  await db.insertInto('fleet_history').values(rows.map((r) => ({ resolution, ...r })))
    .onConflict((oc) => oc.columns(['resolution', 'metric', 'bucket', 'label']).doUpdateSet(mode === 'replace'
      ? { min: sql`excluded.min`, max: sql`excluded.max`, sum: sql`excluded.sum`, samples: sql`excluded.samples` }
      : {
        min: sql`case when excluded.min < fleet_history.min then excluded.min else fleet_history.min end`,
        max: sql`case when excluded.max > fleet_history.max then excluded.max else fleet_history.max end`,
        sum: sql`fleet_history.sum + excluded.sum`,
        samples: sql`fleet_history.samples + excluded.samples`,
      }))
    .execute();
}
