import { TEST_PG_URL, createTestDatabase, pgSkipReason, skipUnless, tempDir } from '@pallas/testkit';

/**
 * The databases the store suite runs on: SQLite always, PostgreSQL when
 * PALLAS_TEST_PG_URL is set (CI sets it). Each run gets its own fresh PostgreSQL database.
 */
export interface StoreTarget {
  name: 'sqlite' | 'postgres';
  url: string;
  dispose(): Promise<void>;
}

export async function sqliteTarget(): Promise<StoreTarget> {
  const dir = tempDir('pallas-store-');
  return { name: 'sqlite', url: `sqlite:${dir.path}/pallas.db`, dispose: async () => dir.cleanup() };
}

export async function postgresTarget(baseUrl: string): Promise<StoreTarget> {
  const db = await createTestDatabase(baseUrl);
  return { name: 'postgres', url: db.url, dispose: () => db.drop() };
}

export const PG_URL = TEST_PG_URL;

/** `skip` for a PostgreSQL block: skipped without a server on a partial run, failed under CI and npm test. */
export const pgSkip = (): false | string => skipUnless(pgSkipReason);
