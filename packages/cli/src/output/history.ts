/** History in words and small pictures for the terminal (docs/history.md). */
import type { FleetSeries, PresenceSummary } from '@pallas/protocol';
import { formatDuration } from '@pallas/protocol/units';

/** "24 h", "7 d", "90 min": a range's length as people say it. */
export function formatSpan(sec: number): string {
  if (sec % 86400 === 0 && sec > 2 * 86400) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  return `${Math.round(sec / 60)} min`;
}

/** "41 min", "2 h 5 min", "3 d 4 h": a stretch of time, to the minute (seconds under one). */
export function formatLength(sec: number): string {
  if (sec < 60) return `${Math.round(sec)} s`;
  return formatDuration(sec).replace(/(\d+)([dhm])/g, (_, n: string, u: string) => `${n} ${u === 'm' ? 'min' : u}`).replace(/ \d+s$/, '');
}

/**
 * A device's presence over a range in one line: "offline 3 times in 24 h, longest 41 min
 * (1 h 10 min in all); online 95 % of the time". States other than online and offline
 * (unresponsive, …) are named when they happened.
 */
export function presenceInWords(summary: PresenceSummary[], rangeSec: number): string {
  if (summary.length === 0) return `no presence recorded in ${formatSpan(rangeSec)}`;
  const span = formatSpan(rangeSec);
  const known = summary.reduce((s, x) => s + x.totalSec, 0);
  const parts: string[] = [];
  for (const s of summary) {
    if (s.state === 'online') continue;
    if (s.times === 0 && s.totalSec === 0) continue;
    const times = s.times === 0 ? `${s.state} since before the range` : `${s.state} ${s.times === 1 ? 'once' : `${s.times} times`} in ${span}`;
    parts.push(`${times}, longest ${formatLength(s.longestSec)}${s.times > 1 ? ` (${formatLength(s.totalSec)} in all)` : ''}`);
  }
  if (parts.length === 0) parts.push(`never offline in ${span}`);
  const online = summary.find((s) => s.state === 'online')?.totalSec ?? 0;
  if (known > 0) parts.push(`online ${formatPercent(online / known)} of the time`);
  return parts.join('; ');
}

function formatPercent(ratio: number): string {
  const pct = ratio * 100;
  return `${pct >= 99.95 || pct < 0.05 ? pct.toFixed(0) : pct.toFixed(1)} %`;
}

const BARS = '▁▂▃▄▅▆▇█';

/** One character per value, scaled from the lowest to the highest; a missing value is a space. */
export function sparkline(values: Array<number | null>): string {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return '';
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  return values.map((v) => (v === null ? ' ' : BARS[hi === lo ? 3 : Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))]!)).join('');
}

/** A series' values on a regular grid of `points` steps from `fromMs` (null where it has none). */
export function onGrid(series: FleetSeries | undefined, fromMs: number, stepSec: number, points: number, pick: (p: FleetSeries['points'][number]) => number): Array<number | null> {
  const grid: Array<number | null> = Array(points).fill(null);
  for (const p of series?.points ?? []) {
    const i = Math.floor((Date.parse(p.at) - fromMs) / (stepSec * 1000));
    if (i >= 0 && i < points) grid[i] = pick(p);
  }
  return grid;
}
