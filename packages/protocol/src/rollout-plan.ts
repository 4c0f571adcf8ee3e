/**
 * Rollout wave planning: plain functions and defaults, without the schema library, so the web
 * console's wizard shows the same wave sizes the manager will use (`@pallas/protocol/constants`).
 */

/** Wave sizes: a list of counts or percentages (`"10%"`), or an exponential ramp. */
export type WaveSpec =
  | { sizes: Array<number | string> }
  | { ramp: { first: number; factor: number; cap?: number } };

/** The defaults of a rollout's policy (docs/rollouts.md lists each one and why). */
export const ROLLOUT_DEFAULTS = {
  /** 1, 2, 4, 8 … devices, at most 100 a wave: a canary, then growing while nothing fails. */
  waves: { ramp: { first: 1, factor: 2, cap: 100 } } as WaveSpec,
  /** Seconds a device's task has from creation to its result (the task's `timeoutSec`). */
  deviceTimeoutSec: 3600,
  /** New attempts after a failure or a timeout, per device. */
  retries: 0,
  /** Devices with a task in flight (or being verified) at once, across the rollout. */
  maxInProgress: 50,
  /** Share of a wave's devices that must succeed before the next wave starts. */
  successShare: 1,
  /** Seconds to wait after a wave met its gate before the next one starts. */
  soakSec: 0,
  /** Trip when this share of the devices that finished (since the last resume) failed … */
  errorShare: 0.2,
  /** … once at least this many have finished (one failure of the first device is not 100 %). */
  errorMinFinished: 5,
  errorAction: 'pause' as 'pause' | 'abort',
  /** Seconds from creation after which devices still pending are skipped and the rollout ends. */
  deadlineSec: 7 * 24 * 3600,
  /** Seconds an agent update or a patch has, after its task succeeded, to report healthy on the new version. */
  verifySec: 600,
  membership: 'fixed' as 'fixed' | 'dynamic',
} as const;

/** At most this many waves: a plan is shown in full in the console and the CLI. */
export const MAX_WAVES = 100;

/**
 * The size of each wave for `total` devices. Listed sizes are taken in order (a percentage is
 * of `total`, rounded up, at least 1); devices left after the list go in more waves of the last
 * size. A ramp grows by `factor` (rounded up) up to `cap`. The last wave takes what is left, and
 * waves beyond MAX_WAVES merge into the last one. No wave is empty; zero devices, zero waves.
 */
export function planWaves(total: number, spec: WaveSpec): number[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`total must be a non-negative integer, got ${total}`);
  const sizes: number[] = [];
  let left = total;
  const push = (n: number): void => {
    const size = Math.min(left, Math.max(1, n));
    if (sizes.length === MAX_WAVES) sizes[MAX_WAVES - 1]! += size;
    else sizes.push(size);
    left -= size;
  };
  if ('sizes' in spec) {
    if (spec.sizes.length === 0) throw new RangeError('sizes: give at least one wave');
    const counts = spec.sizes.map((s) => sizeOf(s, total));
    for (const n of counts) if (left > 0) push(n);
    const last = counts.at(-1)!;
    while (left > 0) push(last);
  } else {
    const { first, factor } = spec.ramp;
    const cap = spec.ramp.cap ?? Number.MAX_SAFE_INTEGER;
    if (!(first >= 1) || !(factor >= 1) || !(cap >= 1)) throw new RangeError('ramp: first and cap at least 1, factor at least 1');
    let next = Math.min(first, cap);
    while (left > 0) {
      push(next);
      next = Math.min(cap, Math.ceil(next * factor));
    }
  }
  return sizes;
}

/** A count, or `"12.5%"` of `total` rounded up (at least 1). */
export function sizeOf(size: number | string, total: number): number {
  if (typeof size === 'number') {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a wave size must be a positive integer or a percentage, got ${size}`);
    return size;
  }
  const m = /^(\d+(?:\.\d+)?)%$/.exec(size);
  const pct = m ? Number(m[1]) : NaN;
  if (!(pct > 0 && pct <= 100)) throw new RangeError(`a wave size must be a positive integer or a percentage in (0, 100], got "${size}"`);
  return Math.max(1, Math.ceil((pct / 100) * total));
}
