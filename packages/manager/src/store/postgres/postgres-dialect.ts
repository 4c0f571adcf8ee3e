import pg from 'pg';
import { PostgresDialect, type Dialect } from 'kysely';

/**
 * PostgreSQL through a pg pool; one pool per URL (primary, and optionally a read replica).
 * `lazyCommits`: the pool's sessions commit without waiting for the WAL flush (Store.lazy).
 */
export function postgresDialect(url: string, max = 10, lazyCommits = false): Dialect {
  return new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max, ...(lazyCommits ? { options: '-c synchronous_commit=off' } : {}) }) });
}
