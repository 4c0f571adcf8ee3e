/**
 * Token buckets keyed by a string (a device id, a remote address): `ratePerSec` tokens a
 * second up to `burst`. The map is bounded: when it is full, keys whose bucket has refilled
 * completely (they hold no state worth keeping) are dropped first, then the oldest.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    readonly maxKeys = 100_000,
    readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`; false when there is none (the caller refuses or drops). */
  take(key: string): boolean {
    if (this.ratePerSec <= 0) return true; // 0 = unlimited
    const now = this.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#prune(now);
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSec);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  forget(key: string): void {
    this.#buckets.delete(key);
  }

  get size(): number {
    return this.#buckets.size;
  }

  #prune(now: number): void {
    const full = (this.burst / this.ratePerSec) * 1000;
    for (const [k, b] of this.#buckets) if (now - b.at >= full) this.#buckets.delete(k);
    // Still full: drop the oldest half (Map iterates in insertion order).
    if (this.#buckets.size >= this.maxKeys) {
      let n = this.#buckets.size / 2;
      for (const k of this.#buckets.keys()) {
        if (n-- <= 0) break;
        this.#buckets.delete(k);
      }
    }
  }
}
