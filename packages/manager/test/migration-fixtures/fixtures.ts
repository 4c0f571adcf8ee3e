import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrationProvider } from '../../src/store/migrations/index.js';

/** Where the fixtures live: `after-<migration>.<dialect>.sql`, SQL text (never database files). */
export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'sql');

export type Dialect = 'sqlite' | 'postgres';

export function fixtureFile(migration: string, dialect: Dialect): string {
  return join(FIXTURE_DIR, `after-${migration}.${dialect}.sql`);
}

/** Every migration, in order (the names sort as they run). */
export async function migrationNames(): Promise<string[]> {
  return Object.keys(await migrationProvider.getMigrations()).sort();
}

/**
 * The schema versions that need a fixture: every one a later migration upgrades, i.e. each
 * migration but the newest. A new migration thus asks for a fixture of the version before it.
 */
export async function versionsNeedingFixtures(): Promise<string[]> {
  return (await migrationNames()).slice(0, -1);
}

/** Versions needing a fixture that lack one (in either dialect). */
export async function missingFixtures(): Promise<string[]> {
  return (await versionsNeedingFixtures()).filter((m) => !existsSync(fixtureFile(m, 'sqlite')) || !existsSync(fixtureFile(m, 'postgres')));
}
