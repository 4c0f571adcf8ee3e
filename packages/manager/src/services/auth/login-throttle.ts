import { sql } from 'kysely';
import { AppError } from '../../errors.js';
import type { Db, Store } from '../../store/store.js';

export interface LoginThrottleSettings {
  /** Attempts on one account within the window before it is locked. Default 5. */
  maxAccountFailures: number;
  /** Attempts from one address within the window before it is locked (higher: NAT). Default 20. */
  maxAddressFailures: number;
  /** How long an attempt counts. Default 15 min. */
  windowMs: number;
  /** First lock; each further failure doubles it. Default 30 s. */
  baseLockMs: number;
  /** Longest lock. Default 15 min. */
  maxLockMs: number;
}

export const DEFAULT_THROTTLE: LoginThrottleSettings = {
  maxAccountFailures: 5, maxAddressFailures: 20, windowMs: 15 * 60_000, baseLockMs: 30_000, maxLockMs: 15 * 60_000,
};

/** How an attempt ended, once its password was checked. */
export type AttemptOutcome = 'right' | 'wrong' | 'not-checked';

/** A counted attempt: settle it once the password has been checked. */
export interface Attempt {
  settle(outcome: AttemptOutcome): Promise<void>;
}

const NOT_LOCKED = new Date(0).toISOString();
/** Locks this process has seen, kept to refuse without a query; more are simply not cached. */
const MAX_CACHED_LOCKS = 10_000;

/**
 * Slows down password guessing, per account and per client address, with its counts in the
 * store so that every manager sharing the database enforces one budget (issue #14).
 *
 * Each attempt is **counted before** its password is hashed, by one conditional upsert that
 * only succeeds while the key is not locked: of any number of parallel guesses, at most
 * `max` are checked before the lock (the `max`-th sets it). A right password then gives its
 * count back (the account's count is cleared; the address keeps the others, so an attacker
 * cannot reset it by logging into an account of their own). Each failure past `max` doubles
 * the lock (30 s, 1 min, … 15 min). While locked, attempts get 429 with `Retry-After`
 * without a password check.
 *
 * The in-process cache of locks seen only ever refuses sooner: a lock ends by time alone (a
 * right password needs an unlocked key), so it cannot let an attempt through that the store
 * would refuse.
 */
export class LoginThrottle {
  readonly #db: Db;
  readonly #s: LoginThrottleSettings;
  readonly #now: () => number;
  readonly #lockedUntil = new Map<string, number>();

  constructor(store: Store, settings: Partial<LoginThrottleSettings> = {}, now: () => number = Date.now) {
    this.#db = store.write;
    this.#s = { ...DEFAULT_THROTTLE, ...settings };
    this.#now = now;
  }

  /**
   * Counts an attempt on `username` from `ip`, or throws 429 with the seconds to wait when
   * either is locked. The caller checks the password only after this returns.
   */
  async begin(username: string, ip: string): Promise<Attempt> {
    const account = `a:${username.toLowerCase()}`;
    const address = `i:${ip}`;
    this.#refuseIfCached(account, address);
    await this.#count(address, this.#s.maxAddressFailures);
    try {
      await this.#count(account, this.#s.maxAccountFailures);
    } catch (err) {
      await this.#giveBack(address);
      throw err;
    }
    let settled = false;
    return {
      settle: async (outcome) => {
        if (settled || outcome === 'wrong') return;
        settled = true;
        if (outcome === 'right') {
          await this.#db.deleteFrom('login_throttle').where('throttle_key', '=', account).execute();
          this.#lockedUntil.delete(account);
        } else {
          await this.#giveBack(account);
        }
        await this.#giveBack(address);
      },
    };
  }

  /** Deletes rows that would start over anyway (window and last lock long past); run now and then. */
  async prune(): Promise<number> {
    const now = this.#now();
    const res = await this.#db.deleteFrom('login_throttle')
      .where('window_start', '<', iso(now - this.#s.windowMs))
      .where('locked_until', '<', iso(now - this.#s.windowMs))
      .executeTakeFirst();
    for (const [k, until] of this.#lockedUntil) if (until <= now) this.#lockedUntil.delete(k);
    return Number(res.numDeletedRows);
  }

  #refuseIfCached(...keys: string[]): void {
    const now = this.#now();
    const wait = Math.max(...keys.map((k) => (this.#lockedUntil.get(k) ?? 0) - now));
    if (wait > 0) throw tooMany(wait);
  }

  /**
   * One statement, atomic on SQLite and PostgreSQL: insert or bump the key's count unless it
   * is locked, setting the lock when the count reaches `max`. No row back means locked.
   */
  async #count(key: string, max: number): Promise<void> {
    const now = this.#now();
    // A key starts over once its window and its last lock both ended a window ago; a guesser
    // who keeps going keeps doubling the lock up to the cap.
    const cutoff = iso(now - this.#s.windowMs);
    const expired = sql`(login_throttle.window_start < ${cutoff} AND login_throttle.locked_until < ${cutoff})`;
    const next = sql`(CASE WHEN ${expired} THEN 1 ELSE login_throttle.failures + 1 END)`;
    const { rows } = await sql<{ failures: number }>`
      INSERT INTO login_throttle (throttle_key, failures, window_start, locked_until)
      VALUES (${key}, 1, ${iso(now)}, ${max <= 1 ? iso(now + this.#lockMs(0)) : NOT_LOCKED})
      ON CONFLICT (throttle_key) DO UPDATE SET
        failures = ${next},
        window_start = CASE WHEN ${expired} THEN ${iso(now)} ELSE login_throttle.window_start END,
        locked_until = CASE WHEN ${next} >= ${max} THEN ${this.#lockEnd(next, max, now)} ELSE login_throttle.locked_until END
      WHERE login_throttle.locked_until <= ${iso(now)}
      RETURNING failures`.execute(this.#db);
    if (rows.length > 0) return;
    const row = await this.#db.selectFrom('login_throttle').select('locked_until').where('throttle_key', '=', key).executeTakeFirst();
    const until = row ? Date.parse(row.locked_until) : now + 1000;
    if (this.#lockedUntil.size < MAX_CACHED_LOCKS) this.#lockedUntil.set(key, until);
    throw tooMany(until - now);
  }

  /** Undoes the count of an attempt that was not a wrong password. */
  async #giveBack(key: string): Promise<void> {
    await this.#db.updateTable('login_throttle').set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('throttle_key', '=', key).where('failures', '>', 0).execute();
  }

  /** The lock's end for the count `next` as SQL: the doublings are few, so they are listed. */
  #lockEnd(next: ReturnType<typeof sql>, max: number, now: number) {
    const steps = [];
    for (let k = 0; this.#s.baseLockMs * 2 ** k < this.#s.maxLockMs; k++) {
      steps.push(sql`WHEN ${max + k} THEN ${iso(now + this.#lockMs(k))}`);
    }
    return sql`(CASE ${next} ${sql.join(steps, sql` `)} ELSE ${iso(now + this.#s.maxLockMs)} END)`;
  }

  #lockMs(doublings: number): number {
    return Math.min(this.#s.maxLockMs, this.#s.baseLockMs * 2 ** doublings);
  }
}

function tooMany(waitMs: number): AppError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new AppError('too_many_requests', `too many failed logins: try again in ${seconds} s`, { headers: { 'retry-after': String(seconds) } });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
