import type { Kysely, Migration } from 'kysely';

/**
 * Which broker usernames a device holds on an external broker (docs/scale-out.md): its live
 * one (null = the device id, the first slot) and, while a credential rotation waits for the
 * device to confirm, the username of the new credential (`<id>.b` or `<id>`). Unused with
 * the embedded broker, which checks every login against the store itself.
 */
export const brokerAccounts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('devices').addColumn('mqtt_username', 'text').execute();
    await db.schema.alterTable('devices').addColumn('pending_mqtt_username', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('devices').dropColumn('pending_mqtt_username').execute();
    await db.schema.alterTable('devices').dropColumn('mqtt_username').execute();
  },
};
