import { SqliteAdapter, sql, type CreateTableBuilder, type Kysely, type Migration } from 'kysely';

/**
 * Fleet and device history (docs/history.md): per-device resource samples and presence
 * transitions, and fleet-wide counts, kept at two resolutions and pruned on a schedule.
 *
 * Buckets are integer minutes since the epoch rather than ISO text like other timestamps:
 * these are the tables with the most rows, 4 bytes beat 24, and bucket arithmetic
 * (`bucket / 15 * 15`) is the same integer division on SQLite and PostgreSQL. Each bucket
 * keeps min, max, sum and the number of samples, so rows written by several managers for
 * the same device and minute merge exactly (a sum merges, an average would not).
 */
export const history: Migration = {
  async up(db: Kysely<unknown>) {
    // On SQLite the bucket tables are their primary key (WITHOUT ROWID): no second copy of the
    // key in a separate index, and a device's range is read in key order without a lookup.
    const clustered = <T extends string, C extends string>(b: CreateTableBuilder<T, C>) =>
      (db.getExecutor().adapter instanceof SqliteAdapter ? b.modifyEnd(sql`without rowid`) : b);
    await db.schema
      .createTable('device_history')
      .addColumn('device_id', 'text', (c) => c.notNull())
      // Bucket length in minutes: 1 or 15.
      .addColumn('resolution', 'integer', (c) => c.notNull())
      .addColumn('bucket', 'integer', (c) => c.notNull())
      .addColumn('samples', 'integer', (c) => c.notNull())
      // Host CPU use, percent; null when no report in the bucket carried it.
      .addColumn('cpu_min', 'real')
      .addColumn('cpu_max', 'real')
      .addColumn('cpu_sum', 'real')
      // Host memory in MB: used (min/max/sum) and the last total.
      .addColumn('mem_used_min', 'real')
      .addColumn('mem_used_max', 'real')
      .addColumn('mem_used_sum', 'real')
      .addColumn('mem_total', 'real')
      // Datastores in GB, all of a host's added up: used (min/max/sum) and the last capacity.
      .addColumn('ds_used_min', 'real')
      .addColumn('ds_used_max', 'real')
      .addColumn('ds_used_sum', 'real')
      .addColumn('ds_capacity', 'real')
      // One device's series over a range is a range of this key; so is pruning, per device.
      .addPrimaryKeyConstraint('device_history_pk', ['device_id', 'resolution', 'bucket'])
      .$call(clustered)
      .execute();

    await db.schema
      .createTable('device_presence_history')
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      // The presence the device entered at `at`, as text: a new state needs no migration.
      .addColumn('state', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('device_presence_history_pk', ['device_id', 'at'])
      .$call(clustered)
      .execute();

    await db.schema
      .createTable('fleet_history')
      .addColumn('resolution', 'integer', (c) => c.notNull())
      // `presence` (a gauge: devices by state), `tasks` (a count of tasks that ended, labelled
      // `state/kind/error code`), `enrollments` (a count).
      .addColumn('metric', 'text', (c) => c.notNull())
      .addColumn('bucket', 'integer', (c) => c.notNull())
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('min', 'real', (c) => c.notNull())
      .addColumn('max', 'real', (c) => c.notNull())
      .addColumn('sum', 'real', (c) => c.notNull())
      .addColumn('samples', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('fleet_history_pk', ['resolution', 'metric', 'bucket', 'label'])
      .$call(clustered)
      .execute();

    // How far the once-a-cluster jobs got (minutes since the epoch), so a manager that takes
    // over the lease, or starts after a stop, goes on where the last one left off.
    await db.schema
      .createTable('history_marks')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('bucket', 'integer', (c) => c.notNull())
      .execute();

    // The fleet sampler counts tasks that ended and devices that enrolled in each minute.
    await db.schema.createIndex('tasks_finished_at').on('tasks').column('finished_at').execute();
    await db.schema.createIndex('devices_enrolled_at').on('devices').column('enrolled_at').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('devices_enrolled_at').execute();
    await db.schema.dropIndex('tasks_finished_at').execute();
    for (const t of ['history_marks', 'fleet_history', 'device_presence_history', 'device_history']) await db.schema.dropTable(t).execute();
  },
};
