import { sql, type RawBuilder } from 'kysely';
import type { Store } from '../../store/store.js';

/**
 * "Now" in milliseconds by the database's clock. Heartbeats and leases compare times written
 * by different managers; taking them all from the one database means the managers' own clocks
 * may drift without a lease ever being held twice.
 */
export function dbNowMs(store: Store): RawBuilder<number> {
  return store.dialect === 'postgres'
    ? sql<number>`(floor(extract(epoch from clock_timestamp()) * 1000))::bigint`
    : sql<number>`cast(unixepoch('subsec') * 1000 as integer)`;
}

export async function readDbNowMs(store: Store): Promise<number> {
  const row = await store.write.selectNoFrom(dbNowMs(store).as('now')).executeTakeFirstOrThrow();
  return Number(row.now);
}
