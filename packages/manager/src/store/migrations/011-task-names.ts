import type { Kysely, Migration } from 'kysely';

/**
 * The names people read on a task, written with the task (docs/tasks.md#names): the device's
 * name, the VM's name, the artifact's name and version, as they were when it was created.
 * A task is a record of what was asked; a later rename does not change what was asked for,
 * and every reader of a task (the list, the live stream, the CLI) gets the names without a join.
 */
export const taskNames: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').addColumn('device_name', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('vm_name', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('artifact_name', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('artifact_version', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    for (const c of ['device_name', 'vm_name', 'artifact_name', 'artifact_version']) await db.schema.alterTable('tasks').dropColumn(c).execute();
  },
};
