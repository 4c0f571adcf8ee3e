import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** The PostgreSQL server tests create their databases on (CI sets it; see `.ci/run`). */
export const TEST_PG_URL = process.env.PALLAS_TEST_PG_URL;

/** Why PostgreSQL tests cannot run here, or undefined (for `skipUnless`). */
export const pgSkipReason: string | undefined = TEST_PG_URL
  ? undefined
  : 'PALLAS_TEST_PG_URL is not set (npm test sets it to postgres://postgres@127.0.0.1:5432/postgres)';

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  url: string;
  name: string;
  /**
   * The server's postmaster pid (its `postmaster.pid`, read through SQL: needs a superuser
   * or pg_read_server_files), or null where it cannot be read. The server is not the
   * test's: this is for telling operators which process holds the database.
   */
  serverPid: number | null;
  /** Drops the database once its sessions have gone. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh database with a random name on the server at `serverUrl`, so that test files
 * running side by side (and several checkouts on one machine) never share one.
 */
export async function createTestDatabase(serverUrl: string, prefix = 'pallas_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  let serverPid: number | null = null;
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const { rows } = await admin.query<{ file: string }>(`SELECT pg_read_file('postmaster.pid') AS file`);
      serverPid = Number.parseInt(rows[0]?.file.split('\n')[0] ?? '', 10) || null;
    } catch {
      serverPid = null; // not a superuser: unknown
    }
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    serverPid,
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        // pg's Pool.end() resolves before its sockets are closed; terminating them with
        // DROP … FORCE would then surface as an uncaught error in the closing clients.
        // Wait for the sessions to go away by themselves first.
        for (let i = 0; i < 50; i++) {
          const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
          if (rows[0]!.n === 0) break;
          await sleep(100);
        }
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Whether a database of that name is on the server at `serverUrl` (e.g. dropped by what made it). */
export async function databaseExists(serverUrl: string, name: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return rows.length > 0;
  } finally {
    await c.end();
  }
}
