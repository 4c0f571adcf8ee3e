import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * PostgreSQL only: device rows are rewritten by every status flush (last_seen_at, facts, …),
 * and a full page leaves PostgreSQL no room to put the new version beside the old one. Then
 * every update is a new tuple elsewhere plus an entry in each of the table's five indexes,
 * and without a vacuum in time the table and its indexes grow with each report. Half-full
 * pages let nearly every status update be a heap-only (HOT) update: no index entries, the
 * old version pruned on the page. Measured on 5,000 rows (docs/benchmarks.md, scenario
 * `scale`): the database's CPU per status row fell by a third and the table stayed a quarter
 * of the size. Pages already full take the setting as their rows move; SQLite has no such
 * setting (its writes replace rows in place).
 */
export const devicesFillfactor: Migration = {
  async up(db: Kysely<unknown>) {
    if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`alter table devices set (fillfactor = 50)`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`alter table devices reset (fillfactor)`.execute(db);
  },
};
