/**
 * History at scale for the benchmark (`npm run bench -- --scenario history`) and for tests:
 * rows synthesized straight into the history tables (docs/history.md), and what the tables
 * weigh on disk. Lives beside the store it writes because it speaks its SQL.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Store } from '../src/store/store.js';

const MIN_MS = 60_000;
export const HISTORY_TABLES = ['device_history', 'device_presence_history', 'fleet_history'] as const;
export const PRESENCE_CHANGES_PER_DAY = 4;
export const FLEET_LABELS = [
  ['presence', 'online'], ['presence', 'offline'], ['presence', 'unresponsive'],
  ['tasks', 'succeeded/vm.power/'], ['tasks', 'failed/vm.deploy/download_failed'], ['tasks', 'failed/vm.power/not_found'], ['tasks', 'timed_out/vm.deploy/'],
  ['enrollments', ''],
] as const;

/** Planner statistics, as autovacuum would have them on a running PostgreSQL (nothing on SQLite). */
export async function analyze(store: Store): Promise<void> {
  if (store.dialect === 'postgres') await sql`analyze`.execute(store.write);
}

/**
 * Synthesizes `days` of history for N new devices straight into the tables, at the kept
 * resolutions: 1-minute buckets for the last 25 h, 15-minute buckets for the whole range,
 * four presence changes a device a day, and the fleet series. Returns the device ids.
 */
export async function synthesizeHistory(store: Store, o: { devices: number; days: number; nowMs: number }): Promise<{ ids: string[]; seconds: number }> {
  const db = store.write;
  const ids = Array.from({ length: o.devices }, () => randomUUID()).sort();
  const enrolled = new Date(o.nowMs - o.days * 86400_000).toISOString();
  for (let i = 0; i < ids.length; i += 500) {
    await db.insertInto('devices').values(ids.slice(i, i + 500).map((id, j) => ({
      id, name: `history-${i + j + 1}`, secret_hash: 'x', presence: 'offline', enrolled_at: enrolled, updated_at: enrolled, status_seq: 0, status: 'active',
    }) as never)).execute();
  }
  const t0 = performance.now();
  const nowMin = Math.floor(o.nowMs / MIN_MS);
  const ranges = [
    { resolution: 1, from: nowMin - 25 * 60, to: nowMin },
    { resolution: 15, from: Math.floor((nowMin - o.days * 1440) / 15) * 15, to: Math.floor(nowMin / 15) * 15 },
  ];
  for (const { resolution, from, to } of ranges) {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const n = sql.lit(resolution);
      // Buckets generated in SQL (the same recursive CTE on both dialects); values vary with the bucket.
      await sql`with recursive m(b) as (select cast(${from} as integer) union all select b + ${n} from m where b + ${n} < ${to})
        insert into device_history (device_id, resolution, bucket, samples, cpu_min, cpu_max, cpu_sum, mem_used_min, mem_used_max, mem_used_sum, mem_total, ds_used_min, ds_used_max, ds_used_sum, ds_capacity)
        select d.id, ${n}, m.b, 2 * ${n}, m.b % 50, m.b % 50 + 20, 2 * ${n} * (m.b % 50 + 10), 1000 + m.b % 500, 1100 + m.b % 500, 2 * ${n} * (1050 + m.b % 500), 8192,
          250 + m.b % 7, 251 + m.b % 7, 2 * ${n} * (250 + m.b % 7), 500
        from devices d cross join m where d.id in (${sql.join(chunk)}) order by d.id, m.b`.execute(db);
    }
  }
  // Presence: four changes a device a day, alternating, the last one offline (as the devices row says).
  const changes = o.days * PRESENCE_CHANGES_PER_DAY;
  const step = (o.days * 86400_000) / changes;
  const transitions = ids.flatMap((id, i) => Array.from({ length: changes }, (_, k) => ({
    device_id: id, at: new Date(o.nowMs - o.days * 86400_000 + k * step + (i % 600) * 1000).toISOString(), state: k % 2 === 1 ? 'offline' : 'online',
  })));
  for (let i = 0; i < transitions.length; i += 2000) await db.insertInto('device_presence_history').values(transitions.slice(i, i + 2000)).execute();
  // The fleet series at both resolutions.
  for (const { resolution, from, to } of ranges) {
    const rows = [];
    for (let b = from; b < to; b += resolution) {
      for (const [metric, label] of FLEET_LABELS) {
        const v = metric === 'presence' ? (label === 'online' ? o.devices - (b % 40) : b % 40) : b % 3;
        rows.push({ resolution, metric, bucket: b, label, min: v, max: v, sum: metric === 'presence' ? v * resolution : v, samples: metric === 'presence' ? resolution : 1 });
      }
    }
    for (let i = 0; i < rows.length; i += 2000) await db.insertInto('fleet_history').values(rows.slice(i, i + 2000)).execute();
  }
  return { ids, seconds: (performance.now() - t0) / 1000 };
}

export interface TableSize { rows: number; bytes: number }

/** Rows and bytes (table and its indexes, as the database keeps them on disk) of each history table. */
export async function tableSizes(store: Store): Promise<Record<string, TableSize>> {
  const out: Record<string, TableSize> = {};
  for (const t of HISTORY_TABLES) {
    const rows = Number((await store.read.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const bytes = store.dialect === 'sqlite'
      ? (await sql<{ b: number }>`select sum(s.pgsize) as b from dbstat s join sqlite_schema m on m.name = s.name where m.tbl_name = ${t}`.execute(store.write)).rows[0]!.b
      : (await sql<{ b: string }>`select pg_total_relation_size(${t}::regclass) as b`.execute(store.write)).rows[0]!.b;
    out[t] = { rows, bytes: Number(bytes) };
  }
  return out;
}

