/**
 * History as the console's charts draw it (docs/history.md): the ranges the charts offer, the
 * manager's sparse points laid on a regular grid of steps (a step without a point is a gap,
 * `null`), task counts per bar, and each chart's text alternative. Pure functions, tested in
 * Node (test/lib.test.ts).
 */
import type { DeviceHistoryPoint, FleetSeries, Stat } from '@pallas/protocol';
import { explainTaskError } from '@pallas/protocol/constants';
import { formatClock } from './format.js';

export type RangeKey = '1h' | '24h' | '7d';

export interface RangeSpec {
  label: string;
  sec: number;
  /** Seconds per point of a device's series and of the fleet's presence. */
  step: number;
  /**
   * Seconds per point asked for task counts: under 15 minutes for 1 h and 24 h, so that the
   * manager adds them up from its 1-minute buckets and the current hour is there; the 7 d
   * chart reads the quarter hours as they close. One point per label and step: few points
   * however busy the fleet…
   */
  taskStep: number;
  /** …added up into one bar per this many seconds. */
  taskBar: number;
  taskBarLabel: string;
  /** One bar's span in words: "the hour from 14:00". */
  taskBarSpan: string;
}

/** The ranges the charts offer. The 1-minute buckets serve 1 h and 24 h, the 15-minute ones 7 d. */
export const RANGES: Record<RangeKey, RangeSpec> = {
  '1h': { label: '1 h', sec: 3600, step: 60, taskStep: 300, taskBar: 300, taskBarLabel: 'per 5 minutes', taskBarSpan: 'the 5 minutes' },
  '24h': { label: '24 h', sec: 86400, step: 300, taskStep: 600, taskBar: 3600, taskBarLabel: 'per hour', taskBarSpan: 'the hour' },
  '7d': { label: '7 d', sec: 7 * 86400, step: 3600, taskStep: 6 * 3600, taskBar: 6 * 3600, taskBarLabel: 'per 6 hours', taskBarSpan: 'the 6 hours' },
};
export const RANGE_KEYS = Object.keys(RANGES) as RangeKey[];

/** The start of a range ending now, for the history routes' `from` (their `to` defaults to now). */
export function rangeFrom(range: RangeKey, now = Date.now()): string {
  return new Date(now - RANGES[range].sec * 1000).toISOString();
}

/**
 * The start (in seconds) of each step from `from` to `to`, aligned as the manager aligns its
 * points (multiples of the step since the epoch).
 */
export function stepGrid(from: string, to: string, stepSec: number): number[] {
  const first = Math.floor(Date.parse(from) / 1000 / stepSec) * stepSec;
  const end = Date.parse(to) / 1000;
  const grid: number[] = [];
  for (let t = first; t < end; t += stepSec) grid.push(t);
  return grid;
}

/** Values of `points` on `grid`: null where a step has no point or the point lacks the value. */
export function onGrid<P extends { at: string }>(grid: number[], stepSec: number, points: readonly P[], pick: (p: P) => number | undefined): Array<number | null> {
  const values: Array<number | null> = grid.map(() => null);
  const first = grid[0];
  if (first === undefined) return values;
  for (const p of points) {
    const i = Math.floor((Date.parse(p.at) / 1000 - first) / stepSec);
    const v = pick(p);
    if (i >= 0 && i < values.length && v !== undefined) values[i] = v;
  }
  return values;
}

/** A device quantity over a range: the mean of its reports and its peak with the time of the peak's step. */
export interface StatSummary { avg: number; peak: number; peakAt: string; reports: number }

export function summarizeStat(points: readonly DeviceHistoryPoint[], pick: (p: DeviceHistoryPoint) => Stat | undefined): StatSummary | undefined {
  let sum = 0;
  let reports = 0;
  let peak: { value: number; at: string } | undefined;
  for (const p of points) {
    const s = pick(p);
    if (!s || p.samples === 0) continue;
    sum += s.avg * p.samples;
    reports += p.samples;
    if (!peak || s.max > peak.value) peak = { value: s.max, at: p.at };
  }
  return peak && reports > 0 ? { avg: sum / reports, peak: peak.value, peakAt: peak.at, reports } : undefined;
}

/** "CPU over 24 h: avg 23 %, peak 87 % at 14:02 (1,440 reports)", or that nothing was reported. */
export function statSentence(what: string, rangeLabel: string, s: StatSummary | undefined, format: (v: number) => string, now = Date.now()): string {
  if (!s) return `${what} over ${rangeLabel}: no reports in this range yet.`;
  return `${what} over ${rangeLabel}: avg ${format(s.avg)}, peak ${format(s.peak)} at ${formatClock(s.peakAt, now)} (${s.reports.toLocaleString('en')} ${s.reports === 1 ? 'report' : 'reports'}).`;
}

/** "23 %": a CPU percentage as the charts say it. */
export function formatPct(v: number): string {
  return `${Math.round(v)} %`;
}

/** Task counts ended per bar: succeeded, and failed or timed out (labels `state/kind/code`). */
export interface TaskBars { x: number[]; succeeded: Array<number | null>; failed: Array<number | null>; totals: { succeeded: number; failed: number } }

export function taskBars(series: readonly FleetSeries[], from: string, to: string, barSec: number): TaskBars {
  const grid = stepGrid(from, to, barSec);
  const succeeded: Array<number | null> = grid.map(() => null);
  const failed: Array<number | null> = grid.map(() => null);
  const totals = { succeeded: 0, failed: 0 };
  const first = grid[0] ?? 0;
  for (const s of series) {
    if (s.metric !== 'tasks') continue;
    const state = s.label.split('/')[0];
    const into = state === 'succeeded' ? succeeded : state === 'failed' || state === 'timed_out' ? failed : undefined;
    if (!into) continue; // cancelled: no outcome
    for (const p of s.points) {
      const i = Math.floor((Date.parse(p.at) / 1000 - first) / barSec);
      if (i < 0 || i >= into.length) continue;
      into[i] = (into[i] ?? 0) + p.sum;
      totals[into === succeeded ? 'succeeded' : 'failed'] += p.sum;
    }
  }
  // Bars stand in the middle of their step.
  return { x: grid.map((t) => t + barSec / 2), succeeded, failed, totals };
}

/** Enrollments per bar (the `enrollments` series), and how many in all. */
export interface CountBars { x: number[]; values: Array<number | null>; total: number }

export function enrollmentBars(series: readonly FleetSeries[], from: string, to: string, barSec: number): CountBars {
  const grid = stepGrid(from, to, barSec);
  const values: Array<number | null> = grid.map(() => null);
  let total = 0;
  for (const p of series.find((s) => s.metric === 'enrollments')?.points ?? []) {
    const i = Math.floor((Date.parse(p.at) / 1000 - (grid[0] ?? 0)) / barSec);
    if (i < 0 || i >= values.length) continue;
    values[i] = (values[i] ?? 0) + p.sum;
    total += p.sum;
  }
  return { x: grid.map((t) => t + barSec / 2), values, total };
}

/** "Enrollments over 24 h: 4; most in the hour from 09:00 (3)." */
export function enrollmentSentence(range: RangeSpec, bars: CountBars, now = Date.now()): string {
  if (bars.total === 0) return `Enrollments over ${range.label}: none.`;
  const top = bars.values.reduce<number>((best, v, i) => (v !== null && v > (bars.values[best] ?? -1) ? i : best), 0);
  const start = new Date(((bars.x[top] ?? 0) - range.taskBar / 2) * 1000).toISOString();
  return `Enrollments over ${range.label}: ${bars.total.toLocaleString('en')}; most in ${range.taskBarSpan} from ${formatClock(start, now)} (${bars.values[top]}).`;
}

/**
 * The x range of a bar chart, in seconds: from the start of its first bar to the end of its
 * last, so that the bar of the hour in progress (which stands in its middle, maybe after now)
 * is on the chart and counts for its y axis.
 */
export function barRange(x: readonly number[], barSec: number): [number, number] {
  return [(x[0] ?? 0) - barSec / 2, (x.at(-1) ?? 0) + barSec / 2];
}

/** A reason tasks failed: the error code and the kind of task, with how many ended so. */
export interface FailureReason { code: string; kind: string; count: number; words: string | undefined }

/** The commonest failure reasons in the series (failed and timed-out tasks), most first. */
export function topFailureReasons(series: readonly FleetSeries[], limit = 5): FailureReason[] {
  const byReason = new Map<string, FailureReason>();
  for (const s of series) {
    if (s.metric !== 'tasks') continue;
    const [state = '', kind = '', ...rest] = s.label.split('/');
    if (state !== 'failed' && state !== 'timed_out') continue;
    const code = rest.join('/') || (state === 'timed_out' ? 'timed_out' : 'unknown');
    const key = `${code}/${kind}`;
    const r = byReason.get(key) ?? { code, kind, count: 0, words: explainTaskError(code) };
    r.count += s.points.reduce((n, p) => n + p.sum, 0);
    byReason.set(key, r);
  }
  return [...byReason.values()].filter((r) => r.count > 0)
    .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code) || a.kind.localeCompare(b.kind)).slice(0, limit);
}

/** "Tasks ended over 24 h: 12 succeeded, 3 failed or timed out; most failures in the hour from 14:00 (2)." */
export function taskSentence(range: RangeSpec, bars: TaskBars, now = Date.now()): string {
  const { label: rangeLabel, taskBar: barSec, taskBarSpan } = range;
  const { succeeded, failed } = bars.totals;
  if (succeeded + failed === 0) return `Tasks ended over ${rangeLabel}: none.`;
  let worst = -1;
  bars.failed.forEach((n, i) => { if (n !== null && (worst < 0 || n > (bars.failed[worst] ?? 0))) worst = i; });
  const start = (i: number) => new Date(((bars.x[i] ?? 0) - barSec / 2) * 1000).toISOString();
  const peak = worst >= 0 ? `; most failures in ${taskBarSpan} from ${formatClock(start(worst), now)} (${bars.failed[worst]})` : '';
  return `Tasks ended over ${rangeLabel}: ${succeeded.toLocaleString('en')} succeeded, ${failed.toLocaleString('en')} failed or timed out${peak}.`;
}

/** The fleet's presence gauges on the grid (the mean of each step's samples) and in words. */
export interface PresenceLines { online: Array<number | null>; unresponsive: Array<number | null>; offline: Array<number | null> }

export function presenceLines(series: readonly FleetSeries[], grid: number[], stepSec: number): PresenceLines {
  const line = (state: string) => onGrid(grid, stepSec, series.find((s) => s.metric === 'presence' && s.label === state)?.points ?? [], (p) => Math.round(p.avg * 10) / 10);
  const online = line('online');
  // A state no device was in is not sampled (online and offline always are): 0 where the fleet was sampled.
  const zeroWhereSampled = (values: Array<number | null>) => values.map((v, i) => v ?? (online[i] !== null ? 0 : null));
  return { online, unresponsive: zeroWhereSampled(line('unresponsive')), offline: zeroWhereSampled(line('offline')) };
}

/**
 * "Devices online over 24 h: lowest 1 at 14:05, highest 3; unresponsive at most 1; offline at
 * most 1." (From each step's minimum and maximum: a step's mean mixes samples before and after
 * a change. The number now is the overview's counter above.)
 */
export function presenceSentence(rangeLabel: string, series: readonly FleetSeries[], now = Date.now()): string {
  const of = (state: string) => series.find((s) => s.metric === 'presence' && s.label === state)?.points ?? [];
  const online = of('online');
  if (online.length === 0) return `Devices online over ${rangeLabel}: no samples in this range yet.`;
  const lowest = online.reduce((a, p) => (p.min < a.min ? p : a), online[0]!);
  const highest = Math.max(...online.map((p) => p.max));
  const most = (state: string) => Math.max(0, ...of(state).map((p) => p.max));
  return `Devices online over ${rangeLabel}: lowest ${lowest.min} at ${formatClock(lowest.at, now)}, highest ${highest}; `
    + `unresponsive at most ${most('unresponsive')}; offline at most ${most('offline')}.`;
}

/** The range a page's `?range=` asks for; 24 h when it says nothing (or nonsense). */
export function rangeOf(param: string | null): RangeKey {
  return param !== null && Object.hasOwn(RANGES, param) ? (param as RangeKey) : '24h';
}
