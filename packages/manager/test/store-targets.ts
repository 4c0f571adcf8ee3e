import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { tempDir } from '@pallas/testkit';

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
  const dbName = `pallas_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  return {
    name: 'postgres',
    url: url.toString(),
    async dispose() {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      // pg's Pool.end() resolves before its sockets are closed; terminating them with
      // DROP … FORCE would then surface as an uncaught error in the closing clients.
      // Wait for the sessions to go away by themselves first.
      for (let i = 0; i < 50; i++) {
        const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [dbName]);
        if (rows[0].n === 0) break;
        await sleep(100);
      }
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const PG_URL = process.env.PALLAS_TEST_PG_URL;
