import { sql } from 'kysely';
import type { Store } from '../../store/store.js';
import { dbNowMs } from './db-clock.js';

/**
 * Named leases in the store: at most one holder at a time, until the lease expires unless its
 * holder renews it. One conditional statement takes or renews a lease (free, expired, or
 * already ours), so two managers racing for it cannot both win, on SQLite or PostgreSQL.
 */
export class Leases {
  readonly #store: Store;
  readonly #holder: string;

  constructor(store: Store, holder: string) {
    this.#store = store;
    this.#holder = holder;
  }

  /** Takes or renews `name` for `ttlMs`; true when this holder has it now. */
  async acquire(name: string, ttlMs: number): Promise<boolean> {
    const db = this.#store.write;
    const now = dbNowMs(this.#store);
    const expires = sql<number>`${now} + ${ttlMs}`;
    const row = await db.insertInto('leases')
      .values({ name, holder: this.#holder, expires_ms: expires })
      .onConflict((oc) => oc.column('name').doUpdateSet({ holder: this.#holder, expires_ms: expires })
        .where((eb) => eb.or([eb('leases.holder', '=', this.#holder), eb('leases.expires_ms', '<', now)])))
      .returning('holder')
      .executeTakeFirst();
    return row?.holder === this.#holder;
  }

  /** Gives `name` up at once (a clean stop), so another manager need not wait for it to expire. */
  async release(name: string): Promise<void> {
    await this.#store.write.deleteFrom('leases').where('name', '=', name).where('holder', '=', this.#holder).execute();
  }

  /** Who holds each lease that has not expired. */
  async holders(): Promise<Array<{ name: string; holder: string; expiresMs: number }>> {
    const rows = await this.#store.write.selectFrom('leases').select(['name', 'holder', 'expires_ms'])
      .where('expires_ms', '>=', dbNowMs(this.#store)).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, holder: r.holder, expiresMs: Number(r.expires_ms) }));
  }
}
