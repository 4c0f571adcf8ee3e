import { useEffect, useId, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * The console's one time-series chart, on uPlot (docs/console.md, "Charts"): a canvas that
 * follows its container's width, takes its colours from the console's CSS variables (and
 * again when the colour scheme changes), draws a step without data as a gap and a lone point
 * as a dot, and is destroyed with the component. The chart has an accessible name (its
 * title) and is described by its summary, which is shown under it: what a screen reader says
 * and what a reader in a hurry wants are the same sentence.
 */
export interface ChartSeries {
  label: string;
  /** The CSS variable that colours it, e.g. `--good`. */
  color: string;
  /** `line` (default), `bars` (side by side with the other bars), or `edge`: a faint line bounding a band, left out of the legend. */
  kind?: 'line' | 'bars' | 'edge';
  values: Array<number | null>;
}

export interface ChartProps {
  title: string;
  /** The text alternative, shown as the caption and read as the chart's description. */
  summary: string;
  /** Seconds since the epoch, one per value of each series. */
  x: number[];
  series: ChartSeries[];
  /** Fills between two series (indices into `series`), e.g. min and max around an average. */
  band?: { upper: number; lower: number; color: string };
  /** The range the x axis shows, in seconds (the whole range asked, not just where data is). */
  range: [number, number];
  /** The y axis starts at 0 and reaches at least this (e.g. 100 for a percentage). */
  yMax?: number;
  formatY(v: number): string;
  /** Counts: ticks on whole numbers only. */
  integer?: boolean;
  height?: number;
  /** For tests and styles: which chart this is. */
  name: string;
}

const FALLBACK = '#667085';

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || FALLBACK;
}

/** `#rrggbb` (or `rgb(r, g, b)`) with an alpha, for fills under a line. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (hex) return `rgba(${parseInt(hex[1]!, 16)}, ${parseInt(hex[2]!, 16)}, ${parseInt(hex[3]!, 16)}, ${alpha})`;
  const rgb = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(color);
  return rgb ? `rgba(${rgb[1]}, ${rgb[2]}, ${rgb[3]}, ${alpha})` : color;
}

/** Indices of values with no neighbour: a line cannot show them, a dot does. */
const lonePoints: uPlot.Series.Points.Filter = (u, seriesIdx, show) => {
  if (show) return null;
  const d = u.data[seriesIdx] ?? [];
  const out: number[] = [];
  for (let i = 0; i < d.length; i++) if (d[i] != null && d[i - 1] == null && d[i + 1] == null) out.push(i);
  return out;
};

const hourMinute = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' });
const dayMonth = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short' });
const dayTime = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

/** Time ticks as the console writes times: "14:00", and the date at midnight or when ticks are days apart. */
const timeTicks: uPlot.Axis['values'] = (_u, splits, _axis, _space, incr) => splits.map((t) => {
  const d = new Date(t * 1000);
  return incr >= 86400 || (d.getHours() === 0 && d.getMinutes() === 0) ? dayMonth.format(d) : hourMinute.format(d);
});

function options(p: ChartProps, width: number, range: { current: [number, number] }): uPlot.Options {
  const muted = cssVar('--muted');
  const grid = cssVar('--border');
  const bars = p.series.filter((s) => s.kind === 'bars').length;
  let barNo = 0;
  const fmt = (_u: uPlot, v: number | null) => (v == null ? '—' : p.formatY(v));
  return {
    width,
    height: p.height ?? 180,
    // No drag-to-zoom: on a phone a drag scrolls the page.
    cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      x: { time: true, range: () => range.current },
      y: { range: (_u, _min, max) => [0, top(p.yMax, max)] },
    },
    axes: [
      { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, values: timeTicks },
      {
        stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 64,
        values: (_u, splits) => splits.map((v) => p.formatY(v)),
        // Against a fixed top (100 %, the memory or datastore size), quarters of it: "8 GiB, 16 GiB…".
        ...(p.yMax !== undefined ? { splits: quarters } : {}),
        ...(p.integer ? { incrs: WHOLE } : {}),
      },
    ],
    series: [
      { value: (_u, t) => (t == null ? '—' : dayTime.format(new Date(t * 1000))) },
      ...p.series.map((s): uPlot.Series => {
        const color = cssVar(s.color);
        if (s.kind === 'bars') {
          // Side by side: each bar takes its share of the step, the first left of the middle.
          const align = bars > 1 ? (barNo++ === 0 ? -1 : 1) : 0;
          return {
            label: s.label, stroke: color, fill: withAlpha(color, 0.75), width: 1, value: fmt,
            paths: uPlot.paths.bars!({ size: [bars > 1 ? 0.4 : 0.7, 40], align }), points: { show: false },
          };
        }
        if (s.kind === 'edge') return { label: s.label, class: 'chart-edge', stroke: withAlpha(color, 0.35), width: 1, value: fmt, points: { show: false } };
        return { label: s.label, stroke: color, width: 2, value: fmt, points: { filter: lonePoints, size: 6, fill: color } };
      }),
    ],
    bands: p.band ? [{ series: [p.band.upper + 1, p.band.lower + 1], fill: withAlpha(cssVar(p.band.color), 0.15) }] : [],
  };
}

/** The top of the y axis: the fixed top while the data stays under it, else a round number over the data. */
function top(fixed: number | undefined, max: number | null): number {
  const high = max ?? 0;
  return fixed !== undefined && high <= fixed ? fixed : niceMax(Math.max(high, 1));
}

const WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

/** Five ticks from 0 to the y axis's top. */
function quarters(u: uPlot): number[] {
  const max = u.scales.y?.max ?? 1;
  return [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
}

/** The next "round" number at or above `v`: 1, 2, 2.5, 5 × a power of ten. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 2.5, 5, 10].find((m) => m * mag >= v) ?? 10) * mag;
}

function dataOf(p: ChartProps): uPlot.AlignedData {
  return [p.x, ...p.series.map((s) => s.values)];
}

/** Re-reads the colours when the colour scheme changes (the CSS variables may follow it). */
function useColorScheme(): number {
  const [scheme, setScheme] = useState(0);
  useEffect(() => {
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    const changed = () => setScheme((n) => n + 1);
    media.addEventListener('change', changed);
    return () => media.removeEventListener('change', changed);
  }, []);
  return scheme;
}

export function TimeSeriesChart(props: ChartProps) {
  const id = useId();
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const range = useRef<[number, number]>(props.range);
  range.current = props.range;
  const scheme = useColorScheme();
  // What makes a new plot rather than new data: the series' names, colours and kinds.
  const shape = JSON.stringify([props.series.map((s) => [s.label, s.color, s.kind]), props.band, props.yMax, props.height, props.integer]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(options(latest.current, el.clientWidth, range), dataOf(latest.current), el);
    plot.current = u;
    const resize = new ResizeObserver(() => {
      if (el.clientWidth > 0 && el.clientWidth !== u.width) u.setSize({ width: el.clientWidth, height: u.height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, scheme]);

  useEffect(() => {
    plot.current?.setData(dataOf(props));
  }, [props.x, props.series, props.range[0], props.range[1]]);

  const drawn = props.series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
  return (
    <figure className="chart" data-chart={props.name} data-points={drawn}>
      <h3 className="chart-title" id={`${id}-title`}>{props.title}</h3>
      <div className="chart-plot" ref={box} role="img" aria-labelledby={`${id}-title`} aria-describedby={`${id}-summary`} />
      {drawn === 0 && <p className="chart-empty muted">No data in this range yet.</p>}
      <figcaption className="chart-summary muted small" id={`${id}-summary`} data-testid="chart-summary">{props.summary}</figcaption>
    </figure>
  );
}
