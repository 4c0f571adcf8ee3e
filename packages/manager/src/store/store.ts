import { Kysely, Migrator, sql } from 'kysely';
import type { Database } from './schema.js';
import { migrationProvider } from './migrations/index.js';

export type { Database } from './schema.js';
export type Db = Kysely<Database>;

/**
 * Whether the database answers at all. A batch writer whose batch was refused asks this
 * before it tries the rows one by one: with the database down, that would be one failed
 * connection attempt per row, every retry.
 */
export function storeAnswers(db: Db): Promise<boolean> {
  return sql`select 1`.execute(db).then(() => true, () => false);
}

/**
 * The store port: a writer and a reader. On SQLite both are the same connection; on
 * PostgreSQL the reader may be a replica, so only queries that tolerate a little lag
 * (listings, dashboards) use it.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly write: Db;
  /**
   * A writer for what a crash of the database server itself may lose without harm, because a
   * newer report replaces it (device status and presence, task progress). On PostgreSQL its
   * sessions commit without waiting for the WAL to reach the disk (`synchronous_commit = off`):
   * a commit is visible at once and survives any manager's crash, and a server crash loses at
   * most the last ~0.6 s of such commits, never one that a later durable commit depends on
   * (the WAL is written in order). The same bargain SQLite's `synchronous = NORMAL` already
   * makes for every write. On SQLite it is the writer.
   */
  readonly lazy: Db;
  readonly read: Db;
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function openStore(url: string, readUrl?: string): Promise<Store> {
  let dialect: Store['dialect'];
  let write: Db;
  let lazy: Db;
  let read: Db;
  if (url.startsWith('sqlite:')) {
    const { sqliteDialect } = await import('./sqlite/sqlite-dialect.js');
    dialect = 'sqlite';
    write = new Kysely<Database>({ dialect: sqliteDialect(url.slice('sqlite:'.length)) });
    lazy = write;
    read = write;
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { postgresDialect } = await import('./postgres/postgres-dialect.js');
    dialect = 'postgres';
    write = new Kysely<Database>({ dialect: postgresDialect(url) });
    // Two sessions: its writers (the status buffer, the task reports) each flush one batch at a time.
    lazy = new Kysely<Database>({ dialect: postgresDialect(url, 2, true) });
    read = readUrl ? new Kysely<Database>({ dialect: postgresDialect(readUrl) }) : write;
  } else {
    throw new Error(`unsupported database URL "${url}": use sqlite:<file> or postgres://…`);
  }
  return {
    dialect,
    write,
    lazy,
    read,
    async migrate() {
      const { error, results } = await new Migrator({ db: write, provider: migrationProvider }).migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
        throw new Error(`migration ${failed} failed: ${(error as Error).message}`, { cause: error });
      }
    },
    async ping() {
      await write.selectFrom('users').select('id').limit(1).execute();
    },
    async close() {
      await write.destroy();
      if (lazy !== write) await lazy.destroy();
      if (read !== write) await read.destroy();
    },
  };
}
