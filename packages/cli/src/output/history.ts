/** History as small pictures for the terminal (docs/history.md); in words: `@pallas/protocol/units`. */
import type { FleetSeries } from '@pallas/protocol';

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
