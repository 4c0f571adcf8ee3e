import type { Kysely, Migration } from 'kysely';

/**
 * The tasks table is also each device's outbox: queued rows are what a device has not been
 * sent yet. No foreign key to devices: a decommissioned device's tasks stay as history.
 */
export const tasks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('operation', 'text', (c) => c.notNull())
      .addColumn('vm_id', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('progress_pct', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('progress_message', 'text')
      .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('error_code', 'text')
      .addColumn('error_message', 'text')
      .addColumn('result_vm', 'text')
      .addColumn('late_result', 'text')
      .addColumn('retry_of', 'text')
      .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('sent_at', 'text')
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('deadline_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    // The outbox pump: a device's queued and in-flight tasks, in id order.
    await db.schema.createIndex('tasks_device_state').on('tasks').columns(['device_id', 'state', 'id']).execute();
    // The deadline sweep: active tasks by deadline.
    await db.schema.createIndex('tasks_state_deadline').on('tasks').columns(['state', 'deadline_at']).execute();
    await db.schema.createIndex('tasks_vm').on('tasks').columns(['vm_id']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('tasks').execute();
  },
};
