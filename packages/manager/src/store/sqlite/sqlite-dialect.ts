import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteDialect, type Dialect, type SqliteDatabase, type SqliteStatement } from 'kysely';

/** How many distinct SQL texts keep a prepared statement. Our queries are a few dozen shapes. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew; with better-sqlite3 that is a measurable share of a
 * short query's cost (enrollment runs five). Statements are reusable, so keep them by SQL
 * text. Safe because Kysely runs one query at a time on this single connection and the
 * manager never streams results (`iterate`) from SQLite.
 */
function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => db.close(),
    prepare(sql: string): SqliteStatement {
      let stmt = cache.get(sql);
      if (!stmt) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        stmt = db.prepare(sql) as unknown as SqliteStatement;
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/**
 * SQLite through better-sqlite3 (synchronous, one connection). WAL lets readers run beside
 * the single writer; NORMAL sync keeps commits durable across process crashes (not power loss
 * of the last transaction), which is the usual trade-off for an embedded default.
 */
export function sqliteDialect(file: string): Dialect {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true });
    // The database holds password hashes and token hashes: 0600 whatever the folder's mode or
    // the umask. SQLite gives its -wal and -shm files the database file's mode.
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
  }
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  if (file !== ':memory:') for (const extra of ['-wal', '-shm']) if (existsSync(file + extra)) chmodSync(file + extra, 0o600);
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return new SqliteDialect({ database: withStatementCache(db) });
}
