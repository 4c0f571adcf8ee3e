import type { Kysely, Migration } from 'kysely';

/**
 * Device groups (fixed lists or saved queries) and staged rollouts (docs/rollouts.md).
 *
 * Rollout progress is kept per device (`rollout_devices`), never as counters on the rollout:
 * counts are computed with GROUP BY, so two managers ticking the same rollout cannot lose an
 * increment. Every state change is a conditional UPDATE on the previous state.
 */
export const groupsRollouts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('device_groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('description', 'text')
      // `static` (members in device_group_members) or `query` (the saved query below).
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('query', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('device_group_members')
      .addColumn('group_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('device_group_members_pk', ['group_id', 'device_id'])
      .execute();

    await db.schema
      .createTable('rollouts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      // running | paused | aborted | completed
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('pause_reason', 'text')
      .addColumn('operation_kind', 'text', (c) => c.notNull())
      .addColumn('operation', 'text', (c) => c.notNull())
      // JSON: {groupId} | {tag} | {deviceIds}
      .addColumn('target', 'text', (c) => c.notNull())
      // fixed | dynamic
      .addColumn('membership', 'text', (c) => c.notNull())
      // JSON: the normalized policy (waves, gates, thresholds, timeouts) with defaults filled in.
      .addColumn('policy', 'text', (c) => c.notNull())
      .addColumn('current_wave', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('wave_count', 'integer', (c) => c.notNull())
      // Failures and finished devices when last resumed: the error threshold counts from there.
      .addColumn('base_failed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('base_finished', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addColumn('deadline_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('rollouts_state').on('rollouts').columns(['state', 'id']).execute();

    await db.schema
      .createTable('rollout_waves')
      .addColumn('rollout_id', 'text', (c) => c.notNull())
      .addColumn('wave', 'integer', (c) => c.notNull())
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'text')
      // When the success gate was first met; the next wave may start after the soak time.
      .addColumn('gate_met_at', 'text')
      .addPrimaryKeyConstraint('rollout_waves_pk', ['rollout_id', 'wave'])
      .execute();

    await db.schema
      .createTable('rollout_devices')
      .addColumn('rollout_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('wave', 'integer', (c) => c.notNull())
      // pending | active | verifying | succeeded | failed | skipped
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('task_id', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('error_code', 'text')
      .addColumn('error_message', 'text')
      .addColumn('verify_until', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addPrimaryKeyConstraint('rollout_devices_pk', ['rollout_id', 'device_id'])
      .execute();
    // The tick: a rollout's devices by state and wave.
    await db.schema.createIndex('rollout_devices_state').on('rollout_devices').columns(['rollout_id', 'state', 'wave']).execute();
    // "Two active rollouts with the same operation on one device" is checked by device.
    await db.schema.createIndex('rollout_devices_device').on('rollout_devices').columns(['device_id', 'state']).execute();
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['rollout_devices', 'rollout_waves', 'rollouts', 'device_group_members', 'device_groups']) await db.schema.dropTable(t).execute();
  },
};
