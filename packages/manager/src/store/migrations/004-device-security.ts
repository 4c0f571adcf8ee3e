import type { Kysely, Migration } from 'kysely';

/**
 * Device security state (docs/security.md):
 * - `status`: `active`, `pending` (enrolled, waiting for an operator's approval) or `blocked`
 *   (credential refused on the broker until unblocked);
 * - `pending_secret_hash`: the new credential of a rotation in progress; the old one keeps
 *   working until the device has connected once with the new one;
 * - `flags`: JSON array of warnings such as `credential_clone_suspected`;
 * - `last_address`: where the device last connected from (clone detection, operators).
 */
export const deviceSecurity: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('devices').addColumn('status', 'text', (c) => c.notNull().defaultTo('active')).execute();
    await db.schema.alterTable('devices').addColumn('pending_secret_hash', 'text').execute();
    await db.schema.alterTable('devices').addColumn('flags', 'text').execute();
    await db.schema.alterTable('devices').addColumn('last_address', 'text').execute();
    await db.schema.createIndex('devices_status').on('devices').column('status').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('devices_status').execute();
    for (const column of ['last_address', 'flags', 'pending_secret_hash', 'status']) {
      await db.schema.alterTable('devices').dropColumn(column).execute();
    }
  },
};
