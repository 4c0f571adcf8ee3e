/**
 * Makes the migration fixtures (docs/testing.md, "Migration fixtures"):
 *
 *   npx tsx packages/manager/test/migration-fixtures/make.ts [<migration name> …]
 *
 * For each name (default: every migration but the newest that has no fixture yet), on a fresh
 * SQLite file and a fresh PostgreSQL database (PALLAS_TEST_PG_URL, default the local server),
 * it runs the migrations up to and including that one with Kysely's `migrateTo` (migrations
 * are never edited once released, so these are the older version's own), writes the seed
 * rows, and saves the database as SQL text in `sql/after-<name>.<dialect>.sql`. Commit those.
 * Run it with the built manager (`npm run build`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, Migrator } from 'kysely';
import { createTestDatabase, tempDir } from '@pallas/testkit';
import { migrationProvider } from '../../src/store/migrations/index.js';
import { openStore } from '../../src/store/store.js';
import { hashPassword } from '../../src/security/passwords.js';
import { hashSecret } from '../../src/security/secrets.js';
import { SEED, insertSeed } from './seed.js';
import { dumpPostgres, dumpSqlite } from './sql-text.js';
import { FIXTURE_DIR, fixtureFile, missingFixtures } from './fixtures.js';

const PG_URL = process.env.PALLAS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function migrateAndSeed(db: Kysely<any>, name: string): Promise<void> {
  const { error } = await new Migrator({ db, provider: migrationProvider }).migrateTo(name);
  if (error) throw error;
  const hashes = { admin: await hashPassword(SEED.adminPassword), operator: await hashPassword(SEED.operatorPassword) };
  await insertSeed(db, hashSecret, (who) => hashes[who]);
}

async function make(name: string): Promise<void> {
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const dir = tempDir('pallas-fixture-');
  try {
    const file = join(dir.path, 'pallas.db');
    const sqlite = await openStore(`sqlite:${file}`);
    await migrateAndSeed(sqlite.write, name);
    await sqlite.close();
    writeFileSync(fixtureFile(name, 'sqlite'), dumpSqlite(file));
  } finally {
    dir.cleanup();
  }
  const db = await createTestDatabase(PG_URL, 'pallas_fixture');
  try {
    const postgres = await openStore(db.url);
    await migrateAndSeed(postgres.write, name);
    await postgres.close();
    writeFileSync(fixtureFile(name, 'postgres'), dumpPostgres(db.url));
  } finally {
    await db.drop();
  }
  console.log(`wrote ${fixtureFile(name, 'sqlite')} and ${fixtureFile(name, 'postgres')}`);
}

const names = process.argv.slice(2);
for (const name of names.length > 0 ? names : await missingFixtures()) await make(name);
