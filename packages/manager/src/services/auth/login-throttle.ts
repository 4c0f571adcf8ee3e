import { AppError } from '../../errors.js';

export interface LoginThrottleSettings {
  /** Failures of one account within the window before it is locked. Default 5. */
  maxAccountFailures: number;
  /** Failures from one address within the window before it is locked (higher: NAT). Default 20. */
  maxAddressFailures: number;
  /** How long a failure counts. Default 15 min. */
  windowMs: number;
  /** First lock; each further failure doubles it. Default 30 s. */
  baseLockMs: number;
  /** Longest lock. Default 15 min. */
  maxLockMs: number;
}

export const DEFAULT_THROTTLE: LoginThrottleSettings = {
  maxAccountFailures: 5, maxAddressFailures: 20, windowMs: 15 * 60_000, baseLockMs: 30_000, maxLockMs: 15 * 60_000,
};

interface Entry {
  failures: number;
  /** When the first failure in the current window happened. */
  since: number;
  lockedUntil: number;
}

/** Keys kept per kind; beyond this the oldest are dropped, so a spray of names cannot exhaust memory. */
const MAX_KEYS = 50_000;

/**
 * Slows down password guessing, per account and per client address, in this process's memory.
 * After `max` failures in the window each further failure locks the key for an exponentially
 * growing time (30 s, 1 min, 2 min … up to 15 min); while locked, login answers 429 with
 * `Retry-After` without checking the password. A successful login clears the account's count
 * (not the address's: an attacker must not reset it by logging into an account of their own).
 * Several manager replicas each count on their own (see docs/access-control.md).
 */
export class LoginThrottle {
  readonly #accounts = new Map<string, Entry>();
  readonly #addresses = new Map<string, Entry>();
  readonly #s: LoginThrottleSettings;
  readonly #now: () => number;

  constructor(settings: Partial<LoginThrottleSettings> = {}, now: () => number = Date.now) {
    this.#s = { ...DEFAULT_THROTTLE, ...settings };
    this.#now = now;
  }

  /** Throws a 429 with the seconds to wait when the account or the address is locked. */
  check(username: string, ip: string): void {
    const now = this.#now();
    const wait = Math.max(this.#lockLeft(this.#accounts, username.toLowerCase(), now), this.#lockLeft(this.#addresses, ip, now));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new AppError('too_many_requests', `too many failed logins: try again in ${seconds} s`, { headers: { 'retry-after': String(seconds) } });
    }
  }

  failed(username: string, ip: string): void {
    const now = this.#now();
    this.#fail(this.#accounts, username.toLowerCase(), this.#s.maxAccountFailures, now);
    this.#fail(this.#addresses, ip, this.#s.maxAddressFailures, now);
  }

  succeeded(username: string): void {
    this.#accounts.delete(username.toLowerCase());
  }

  get size(): { accounts: number; addresses: number } {
    return { accounts: this.#accounts.size, addresses: this.#addresses.size };
  }

  #lockLeft(map: Map<string, Entry>, key: string, now: number): number {
    const e = map.get(key);
    return e ? Math.max(0, e.lockedUntil - now) : 0;
  }

  #fail(map: Map<string, Entry>, key: string, max: number, now: number): void {
    let e = map.get(key);
    if (!e || (now - e.since > this.#s.windowMs && e.lockedUntil <= now)) {
      e = { failures: 0, since: now, lockedUntil: 0 };
    }
    map.delete(key); // re-insert: the map's order is least recently failed first
    e.failures++;
    if (e.failures >= max) {
      const lock = Math.min(this.#s.maxLockMs, this.#s.baseLockMs * 2 ** (e.failures - max));
      e.lockedUntil = now + lock;
    }
    map.set(key, e);
    if (map.size > MAX_KEYS) this.#evict(map, now);
  }

  #evict(map: Map<string, Entry>, now: number): void {
    for (const [k, e] of map) {
      if (map.size <= MAX_KEYS * 0.9) break;
      if (now - e.since > this.#s.windowMs && e.lockedUntil <= now) map.delete(k);
    }
    // Still full of live entries: drop the least recently failed.
    for (const k of map.keys()) {
      if (map.size <= MAX_KEYS) break;
      map.delete(k);
    }
  }
}
