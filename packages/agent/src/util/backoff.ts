/**
 * Exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): the n-th delay is uniform in [0, min(cap, base * 2^n)]. Spreading retries over
 * the whole window matters here: after a manager restart thousands of devices retry at once,
 * and a fixed or lightly jittered period would make them arrive in waves.
 */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. Default 1000. */
  baseMs?: number;
  /** Largest delay ever returned, in ms. Default 60000. */
  capMs?: number;
  /** Source of randomness in [0, 1); replaceable in tests. Default Math.random. */
  random?: () => number;
}

/** The largest delay the n-th attempt (0-based) may get, before jitter. */
export function backoffCeiling(attempt: number, baseMs: number, capMs: number): number {
  // 2^attempt overflows to Infinity for large attempts; Math.min keeps that harmless.
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}

export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, baseMs, capMs));
}

/** Stateful helper: `next()` gives the next delay and counts the attempt; `reset()` after success. */
export class Backoff {
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#baseMs = options.baseMs ?? 1000;
    this.#capMs = options.capMs ?? 60_000;
    this.#random = options.random ?? Math.random;
    if (!(this.#baseMs > 0) || !(this.#capMs >= this.#baseMs)) {
      throw new RangeError(`backoff needs 0 < baseMs <= capMs (got ${this.#baseMs}, ${this.#capMs})`);
    }
  }

  /** Attempts counted since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    return fullJitterDelay(this.#attempt++, this.#baseMs, this.#capMs, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
