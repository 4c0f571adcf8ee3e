import { sql } from 'kysely';
import type { DeviceHistory, DeviceHistoryPoint, FleetHistory, FleetMetric, FleetSeries, HistoryQuery, PresenceInterval, PresenceSummary, Stat } from '@pallas/protocol';
import { AppError, notFound } from '../../errors.js';
import type { Db, Store } from '../../store/store.js';
import { DEFAULT_RETENTION, MINUTE_MS, isoOfMinute, minuteOf, type Resolution, type Retention } from './resolutions.js';

const DAY_MS = 24 * 3600_000;
/** A chart has at most this many points; a longer range needs a longer step. */
export const MAX_POINTS = 2000;
const FLEET_METRICS: FleetMetric[] = ['presence', 'tasks', 'enrollments'];

/** A range read at a step, in minutes, and the resolution whose buckets serve it. */
interface Plan {
  fromMs: number;
  toMs: number;
  stepMin: number;
  source: Resolution;
}

/**
 * Reads history for the REST API: a device's resource series and presence intervals, and
 * the fleet's series. Each read is one range of a primary key grouped by step, on the read
 * connection (a replica may lag a little; history does not mind).
 */
export class HistoryReader {
  readonly #read: Db;
  readonly #retention: Retention;
  readonly #now: () => number;

  constructor(deps: { store: Store; retention?: Retention; now?: () => number }) {
    this.#read = deps.store.read;
    this.#retention = deps.retention ?? DEFAULT_RETENTION;
    this.#now = deps.now ?? Date.now;
  }

  async device(deviceId: string, q: HistoryQuery): Promise<DeviceHistory> {
    const device = await this.#read.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
    if (!device) throw notFound('device', deviceId);
    const plan = this.#plan(q);
    const rows = await this.#deviceRows(deviceId, plan);
    const points: DeviceHistoryPoint[] = rows.map((r) => {
      const samples = Number(r.samples);
      const point: DeviceHistoryPoint = { at: isoOfMinute(Number(r.b)), samples };
      const stat = (min: unknown, max: unknown, sum: unknown): Stat | undefined =>
        min === null || max === null || sum === null || samples === 0 ? undefined : { min: Number(min), avg: Number(sum) / samples, max: Number(max) };
      const cpu = stat(r.cpu_min, r.cpu_max, r.cpu_sum);
      const mem = stat(r.mem_min, r.mem_max, r.mem_sum);
      const ds = stat(r.ds_min, r.ds_max, r.ds_sum);
      if (cpu) point.cpuPct = cpu;
      if (mem) point.memoryUsedMB = mem;
      if (r.mem_total !== null) point.memoryTotalMB = Number(r.mem_total);
      if (ds) point.datastoreUsedGB = ds;
      if (r.ds_capacity !== null) point.datastoreCapacityGB = Number(r.ds_capacity);
      return point;
    });
    // A range that reaches now leaves the last interval open: it lasts.
    const presence = await this.#presence(deviceId, plan, !q.to || plan.toMs >= this.#now());
    return {
      deviceId, from: new Date(plan.fromMs).toISOString(), to: new Date(plan.toMs).toISOString(), step: plan.stepMin * 60,
      points, presence, presenceSummary: summarize(presence, plan.fromMs, Math.min(plan.toMs, this.#now())),
    };
  }

  async fleet(q: HistoryQuery & { metric?: string }): Promise<FleetHistory> {
    const plan = this.#plan(q);
    const metrics = q.metric ? (q.metric.split(',') as FleetMetric[]) : FLEET_METRICS;
    const step = sql.lit(plan.stepMin);
    const rows = await this.#read.selectFrom('fleet_history')
      .select(['metric', 'label', sql<number>`bucket / ${step} * ${step}`.as('b'),
        (eb) => eb.fn.min<number>('min').as('min'), (eb) => eb.fn.max<number>('max').as('max'),
        (eb) => eb.fn.sum<number>('sum').as('sum'), (eb) => eb.fn.sum<number>('samples').as('samples')])
      .where('resolution', '=', plan.source.minutes).where('metric', 'in', metrics)
      .where('bucket', '>=', Math.floor(minuteOf(plan.fromMs) / plan.stepMin) * plan.stepMin).where('bucket', '<', Math.ceil(plan.toMs / MINUTE_MS))
      .groupBy(['metric', 'label', sql`bucket / ${step} * ${step}`])
      .orderBy('metric').orderBy('label').orderBy('b').execute();
    const series: FleetSeries[] = [];
    for (const r of rows) {
      let s = series.at(-1);
      if (!s || s.metric !== r.metric || s.label !== r.label) series.push(s = { metric: r.metric as FleetMetric, label: r.label, points: [] });
      const sum = Number(r.sum);
      s.points.push({ at: isoOfMinute(Number(r.b)), min: Number(r.min), max: Number(r.max), sum, avg: sum / Math.max(1, Number(r.samples)) });
    }
    return { from: new Date(plan.fromMs).toISOString(), to: new Date(plan.toMs).toISOString(), step: plan.stepMin * 60, series };
  }

  /** A device's buckets in the range, merged per step (read as they are when the step is the bucket). */
  async #deviceRows(deviceId: string, plan: Plan) {
    const range = this.#read.selectFrom('device_history')
      .where('device_id', '=', deviceId).where('resolution', '=', plan.source.minutes)
      .where('bucket', '>=', Math.floor(minuteOf(plan.fromMs) / plan.stepMin) * plan.stepMin).where('bucket', '<', Math.ceil(plan.toMs / MINUTE_MS));
    if (plan.stepMin === plan.source.minutes) {
      return range.select(['bucket as b', 'samples', 'cpu_min', 'cpu_max', 'cpu_sum', 'mem_used_min as mem_min', 'mem_used_max as mem_max', 'mem_used_sum as mem_sum', 'mem_total',
        'ds_used_min as ds_min', 'ds_used_max as ds_max', 'ds_used_sum as ds_sum', 'ds_capacity']).orderBy('bucket').execute();
    }
    const step = sql.lit(plan.stepMin);
    return range.select([
      sql<number>`bucket / ${step} * ${step}`.as('b'),
      (eb) => eb.fn.sum<number>('samples').as('samples'),
      (eb) => eb.fn.min<number | null>('cpu_min').as('cpu_min'), (eb) => eb.fn.max<number | null>('cpu_max').as('cpu_max'), (eb) => eb.fn.sum<number | null>('cpu_sum').as('cpu_sum'),
      (eb) => eb.fn.min<number | null>('mem_used_min').as('mem_min'), (eb) => eb.fn.max<number | null>('mem_used_max').as('mem_max'), (eb) => eb.fn.sum<number | null>('mem_used_sum').as('mem_sum'),
      (eb) => eb.fn.max<number | null>('mem_total').as('mem_total'),
      (eb) => eb.fn.min<number | null>('ds_used_min').as('ds_min'), (eb) => eb.fn.max<number | null>('ds_used_max').as('ds_max'), (eb) => eb.fn.sum<number | null>('ds_used_sum').as('ds_sum'),
      (eb) => eb.fn.max<number | null>('ds_capacity').as('ds_capacity'),
    ]).groupBy(sql`bucket / ${step} * ${step}`).orderBy('b').execute();
  }

  /**
   * The range, the step and the buckets to read. A step under the coarse resolution reads
   * the fine buckets while the range is within their retention; otherwise the coarse ones,
   * and the step is rounded up to a whole number of them.
   */
  #plan(q: HistoryQuery): Plan {
    const toMs = q.to ? Date.parse(q.to) : this.#now();
    const fromMs = q.from ? Date.parse(q.from) : toMs - DAY_MS;
    if (!(fromMs < toMs)) throw new AppError('invalid_request', '`from` must be before `to`');
    const { fine, coarse } = this.#retention;
    let stepMin = q.step ? q.step / 60 : toMs - fromMs <= fine.keepMinutes * MINUTE_MS ? fine.minutes : coarse.minutes;
    const fineCovers = fromMs >= this.#now() - fine.keepMinutes * MINUTE_MS;
    const source = stepMin < coarse.minutes && fineCovers ? fine : coarse;
    stepMin = Math.ceil(stepMin / source.minutes) * source.minutes;
    const points = Math.ceil((toMs - fromMs) / (stepMin * MINUTE_MS));
    if (points > MAX_POINTS) throw new AppError('invalid_request', `${points} points asked; at most ${MAX_POINTS}: use a longer step or a shorter range`);
    return { fromMs, toMs, stepMin, source };
  }

  /** The device's presence over the range: the state it was in at `from`, then each change. */
  async #presence(deviceId: string, plan: Plan, lasting: boolean): Promise<PresenceInterval[]> {
    const from = new Date(plan.fromMs).toISOString();
    const to = new Date(plan.toMs).toISOString();
    const before = await this.#read.selectFrom('device_presence_history').select(['at', 'state'])
      .where('device_id', '=', deviceId).where('at', '<', from).orderBy('at', 'desc').limit(1).executeTakeFirst();
    const within = await this.#read.selectFrom('device_presence_history').select(['at', 'state'])
      .where('device_id', '=', deviceId).where('at', '>=', from).where('at', '<', to).orderBy('at').execute();
    const changes = before ? [{ at: from, state: before.state }, ...within] : within;
    const intervals: PresenceInterval[] = [];
    for (const c of changes) {
      const last = intervals.at(-1);
      if (last && last.state === c.state) continue;
      if (last) last.to = c.at;
      intervals.push({ state: c.state, from: c.at, to: null });
    }
    const last = intervals.at(-1);
    if (last && !lasting) last.to = to;
    return intervals;
  }
}

/** Per state: entries within the range (the state held at `from` is not an entry), total and longest time. */
export function summarize(intervals: PresenceInterval[], fromMs: number, untilMs: number): PresenceSummary[] {
  const byState = new Map<string, PresenceSummary>();
  for (const i of intervals) {
    const start = Date.parse(i.from);
    const seconds = Math.max(0, ((i.to ? Date.parse(i.to) : untilMs) - start) / 1000);
    const s = byState.get(i.state) ?? { state: i.state, times: 0, totalSec: 0, longestSec: 0 };
    if (start > fromMs) s.times++;
    s.totalSec += seconds;
    s.longestSec = Math.max(s.longestSec, seconds);
    byState.set(i.state, s);
  }
  return [...byState.values()].sort((a, b) => a.state.localeCompare(b.state));
}
