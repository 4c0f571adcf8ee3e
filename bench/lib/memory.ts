/**
 * The manager's memory per connected device, measured so that it can fail: RSS after a forced
 * garbage collection at three or more fleet sizes, the least-squares slope across them, and
 * the slope's standard error as its spread.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { rssBytes } from './proc.js';

/** Node options for a manager whose heap the benchmark can settle (see gc-on-signal.mjs). */
export const GC_NODE_ARGS = ['--expose-gc', '--import', fileURLToPath(new URL('./gc-on-signal.mjs', import.meta.url))];

/**
 * RSS once the heap has settled: a full GC is forced three times, 400 ms apart (freed pages
 * go back to the OS a little after the GC), and the lowest of the samples taken after each
 * one is the figure. Without the forced GC the figure held whatever garbage the last burst
 * left, and a larger fleet could show less memory than a smaller one (issue #20: -31.3 KB).
 */
export async function settledRss(pid: number): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    process.kill(pid, 'SIGUSR2');
    await sleep(400);
    for (let s = 0; s < 3; s++, await sleep(100)) min = Math.min(min, rssBytes(pid));
  }
  return min;
}

export interface MemoryPoint {
  devices: number;
  rssBytes: number;
}

export interface Slope {
  /** Bytes per device: least-squares slope of RSS over connected devices. */
  perDevice: number;
  /** Standard error of that slope, in bytes per device: how far the points stray from the line. */
  spread: number;
  /** The slope between each pair of neighbouring sizes, for the JSON. */
  steps: number[];
  /** Why the figure is no result, or undefined when it passes. */
  failed?: string;
}

/** Fits RSS = a + b·devices and checks that b is a figure at all. */
export function memorySlope(points: MemoryPoint[]): Slope {
  const n = points.length;
  const steps = points.slice(1).map((p, i) => (p.rssBytes - points[i]!.rssBytes) / (p.devices - points[i]!.devices));
  if (n < 3) return { perDevice: Number.NaN, spread: Number.NaN, steps, failed: `${n} fleet sizes measured, a slope with a spread needs at least 3` };
  const mx = points.reduce((s, p) => s + p.devices, 0) / n;
  const my = points.reduce((s, p) => s + p.rssBytes, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.devices - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.devices - mx) * (p.rssBytes - my), 0);
  const perDevice = sxy / sxx;
  const residuals = points.reduce((s, p) => s + (p.rssBytes - my - perDevice * (p.devices - mx)) ** 2, 0);
  const spread = Math.sqrt(residuals / (n - 2) / sxx);
  let failed: string | undefined;
  if (!(perDevice > 0)) failed = `slope ${(perDevice / 1024).toFixed(1)} KB/device is not positive: the fleet's memory is below the noise`;
  else if (spread > perDevice) failed = `spread ±${(spread / 1024).toFixed(1)} KB exceeds the slope ${(perDevice / 1024).toFixed(1)} KB/device`;
  return { perDevice, spread, steps, ...(failed ? { failed } : {}) };
}
