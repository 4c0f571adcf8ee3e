import { join } from 'node:path';
import { TEST_PG_URL, createTestDatabase } from './postgres.js';

/** Which store a manager started by a test uses. */
export type TestDatabaseKind = 'sqlite' | 'postgres';

/** How a test picks a manager's database: a kind (a fresh database of it), or an existing one by URL. */
export type DatabaseChoice = TestDatabaseKind | { url: string };

/**
 * The kind managers get when a test does not say: PALLAS_TEST_DATABASE, which the runner's
 * PostgreSQL pass sets to `postgres` (docs/testing.md); SQLite otherwise.
 */
export function defaultTestDatabase(env: NodeJS.ProcessEnv = process.env): TestDatabaseKind {
  const kind = env.PALLAS_TEST_DATABASE ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`PALLAS_TEST_DATABASE must be sqlite or postgres, not "${kind}"`);
  return kind;
}

/** A manager's database for one test run. */
export interface ManagerDatabase {
  kind: TestDatabaseKind;
  /** Its URL (for SQLite the manager's default file in its data dir). */
  url: string;
  /** The manager's arguments that select it (none for the default SQLite file). */
  args: string[];
  /** Drops a PostgreSQL database this run created; nothing otherwise. */
  dispose(): Promise<void>;
}

/**
 * Makes (or names) the database a manager with data dir `dataDir` runs on. A fresh PostgreSQL
 * database per manager, so that test files running side by side never share one; it is
 * dropped by `dispose`. A given URL is used as it is and not dropped (a restart on the data of
 * a killed manager passes that manager's `databaseUrl`).
 */
export async function managerDatabase(choice: DatabaseChoice = defaultTestDatabase(), dataDir: string): Promise<ManagerDatabase> {
  if (typeof choice === 'object') {
    const kind = choice.url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
    return { kind, url: choice.url, args: ['--database-url', choice.url], dispose: async () => {} };
  }
  if (choice === 'sqlite') return { kind: 'sqlite', url: `sqlite:${join(dataDir, 'pallas.db')}`, args: [], dispose: async () => {} };
  if (!TEST_PG_URL) throw new Error('a manager on PostgreSQL needs PALLAS_TEST_PG_URL (npm test sets it to postgres://postgres@127.0.0.1:5432/postgres)');
  const db = await createTestDatabase(TEST_PG_URL);
  return { kind: 'postgres', url: db.url, args: ['--database-url', db.url], dispose: () => db.drop() };
}
