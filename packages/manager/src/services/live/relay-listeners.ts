import { sql } from 'kysely';
import type pg from 'pg';
import type { Store } from '../../store/store.js';
import { DEAD_AFTER_MS } from '../cluster/manager-instances.js';
import { dbNowMs } from '../cluster/db-clock.js';

/**
 * The session-level advisory lock every manager's listening connection holds, shared, while it
 * listens for the other managers' live events: (key1, key2) = ("PALL" as a number, 2). The
 * two-key form shows in `pg_locks` with `objsubid = 2`, so it never meets the one-key locks
 * of the rollouts (`objsubid = 1`).
 */
const KEY1 = 0x50414c4c;
const KEY2 = 2;

/**
 * Marks `client` as a listener of the other managers' live events, for as long as its session
 * lives (PostgreSQL drops the lock with the session, a killed manager's too), and returns its
 * backend's pid, which the manager leaves out when it asks whether anyone else listens.
 */
export async function markListener(client: pg.Client): Promise<number> {
  const r = await client.query<{ pid: number }>(`select pg_advisory_lock_shared(${KEY1}, ${KEY2}), pg_backend_pid() as pid`);
  return r.rows[0]!.pid;
}

/**
 * Whether another manager may be listening: a session other than `ownListenerPid` holds the
 * listeners' lock, or another manager's heartbeat is alive (a manager of an earlier version
 * listens without the lock; counting it keeps a rolling upgrade's managers hearing each other).
 *
 * A manager alone on its database relayed every live event to nobody: a fan-out to 10,000
 * devices is ~50,000 events, tens of MB serialised, sent as NOTIFYs and read back by its own
 * listener (docs/benchmarks.md, scale). Asked before each batch is built, so a manager that
 * joins is relayed to from the first batch after its listener took the lock, which is before
 * it serves any event stream (it starts the relay before its HTTP servers).
 */
export async function othersListening(store: Store, ownListenerPid: number, ownId: string): Promise<boolean> {
  const r = await sql<{ others: boolean }>`select (
      exists (select 1 from pg_locks where locktype = 'advisory' and classid = ${sql.lit(KEY1)} and objid = ${sql.lit(KEY2)} and objsubid = 2
        and granted and database = (select oid from pg_database where datname = current_database()) and pid <> ${ownListenerPid})
      or exists (select 1 from manager_instances where id <> ${ownId} and heartbeat_ms > ${dbNowMs(store)} - ${DEAD_AFTER_MS})
    ) as others`.execute(store.write);
  return r.rows[0]!.others;
}
