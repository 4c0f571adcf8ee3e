import type { Kysely, Migration } from 'kysely';

/**
 * Login throttling state (docs/access-control.md, "Login throttling"), in the store so that
 * every manager sharing the database counts the same attempts: one row per account
 * (`a:<lower-case user name>`) or client address (`i:<address>`). An attempt is counted
 * before its password is hashed, with one conditional upsert, so parallel guesses cannot all
 * pass a check made before any of them was counted.
 */
export const loginThrottle: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('login_throttle')
      .addColumn('throttle_key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      // ISO-8601 UTC like every timestamp in the store; they compare as text.
      .addColumn('window_start', 'text', (c) => c.notNull())
      .addColumn('locked_until', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('login_throttle').execute();
  },
};
