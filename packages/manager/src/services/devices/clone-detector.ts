/**
 * Spots a device credential used from two places. The broker reports a "takeover" when a
 * device authenticates while a session with its client id is still open. Once is normal (a
 * device reconnecting before the broker noticed its old connection died); from another
 * address than the open session's, or `repeats` times within `windowMs`, it is not: two
 * holders of one credential keep pushing each other off.
 */
export class CloneDetector {
  readonly #recent = new Map<string, number[]>();
  readonly #repeats: number;
  readonly #windowMs: number;
  readonly #onSuspected: (deviceId: string, why: string) => void;
  readonly #now: () => number;

  constructor(opts: { onSuspected: (deviceId: string, why: string) => void; repeats?: number; windowMs?: number; now?: () => number }) {
    this.#onSuspected = opts.onSuspected;
    this.#repeats = opts.repeats ?? 3;
    this.#windowMs = opts.windowMs ?? 600_000;
    this.#now = opts.now ?? Date.now;
  }

  takeover(deviceId: string, previousAddress: string | null, address: string | null): void {
    if (previousAddress && address && previousAddress !== address) {
      this.#onSuspected(deviceId, `connected from ${address} while connected from ${previousAddress}`);
      return;
    }
    const now = this.#now();
    const times = (this.#recent.get(deviceId) ?? []).filter((t) => now - t < this.#windowMs);
    times.push(now);
    if (times.length >= this.#repeats) {
      this.#recent.delete(deviceId);
      this.#onSuspected(deviceId, `${times.length} connections replaced an open one within ${Math.round(this.#windowMs / 1000)} s`);
      return;
    }
    if (this.#recent.size > 100_000) this.#recent.clear(); // bounded; losing counts only delays a flag
    this.#recent.set(deviceId, times);
  }
}
