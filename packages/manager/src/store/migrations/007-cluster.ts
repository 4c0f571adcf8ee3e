import type { Kysely, Migration } from 'kysely';

/**
 * What several managers sharing one database coordinate through (docs/scale-out.md):
 * - `manager_instances`: one row per running manager, its heartbeat in the database's clock;
 *   a row whose heartbeat is older than a few seconds is a dead manager.
 * - `leases`: named, time-limited claims so that periodic work (the deadline sweep, the
 *   stranded-task sweep, audit pruning) runs on one manager at a time.
 * - `tasks.sent_by`: which manager published a task last, so that the tasks a dead manager
 *   marked sent (and may never have published) are sent again by a live one.
 * - `relayed_events`: live events too large for a NOTIFY payload.
 * Times here are milliseconds since the epoch by the database's clock, so managers need not
 * agree on the time.
 */
export const cluster: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('manager_instances')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('url', 'text')
      .addColumn('broker', 'text', (c) => c.notNull())
      // Fingerprint of the keys that sign manifests and download URLs: every manager of a
      // cluster must hold the same ones, or a URL signed by one fails on another.
      .addColumn('keys_fingerprint', 'text', (c) => c.notNull())
      .addColumn('started_ms', 'bigint', (c) => c.notNull())
      .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('expires_ms', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('tasks').addColumn('sent_by', 'text').execute();
    // Live events too large for one NOTIFY, parked for a minute (services/live/cluster-relay.ts).
    await db.schema
      .createTable('relayed_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('created_ms', 'bigint', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('relayed_events').execute();
    await db.schema.alterTable('tasks').dropColumn('sent_by').execute();
    await db.schema.dropTable('leases').execute();
    await db.schema.dropTable('manager_instances').execute();
  },
};
