import pg from 'pg';
import { PostgresDialect, type Dialect } from 'kysely';

/** PostgreSQL through a pg pool; one pool per URL (primary, and optionally a read replica). */
export function postgresDialect(url: string, max = 10): Dialect {
  return new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) });
}
