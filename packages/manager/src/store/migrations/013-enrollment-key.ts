import type { Kysely, Migration } from 'kysely';

/**
 * The hash of the key an agent sends with its first enrollment (docs/security.md, "A lost
 * enrollment answer"). An agent whose answer was lost on the way (the manager committed, the
 * link dropped) asks again with the same key and gets a new credential instead of
 * `device_id_conflict`, which left it unable to ever enroll. Null for devices enrolled before
 * this version and once the device has re-enrolled with its credential.
 */
export const enrollmentKey: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('devices').addColumn('enrollment_key_hash', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('devices').dropColumn('enrollment_key_hash').execute();
  },
};
