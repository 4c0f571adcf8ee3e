import type { Kysely, Migration } from 'kysely';

/**
 * Artifacts (OVA images, patch bundles, agent versions): their metadata; the bytes live in
 * the artifact store (services/artifacts, artifact-store/). A row exists only for a complete
 * upload, so every listed artifact can be downloaded.
 */
export const artifacts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('artifacts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      // bigint: OVA images exceed 2 GiB.
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('signature', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    // One artifact per kind, name and version: "ubuntu 24.04" means one set of bytes.
    await db.schema.createIndex('artifacts_kind_name_version').on('artifacts').columns(['kind', 'name', 'version']).unique().execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('artifacts').execute();
  },
};
