import pg from 'pg';
import { PostgresDialect, type Dialect } from 'kysely';

/** What the lazy writer's sessions set (Store.lazy): commits that do not wait for the WAL flush. */
const LAZY_SESSION = '-c synchronous_commit=off';

/**
 * PostgreSQL through a pg pool; one pool per URL (primary, and optionally a read replica).
 * `lazyCommits`: the pool's sessions commit without waiting for the WAL flush (Store.lazy).
 */
export function postgresDialect(url: string, max = 10, lazyCommits = false): Dialect {
  if (!lazyCommits) return new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) });
  // In the URL (kept with the operator's own options) and beside it (for a string that is not a URL).
  return new PostgresDialect({ pool: new pg.Pool({ connectionString: withSessionOptions(url, LAZY_SESSION), max, options: LAZY_SESSION }) });
}

/**
 * The URL with `settings` added to its own `options` (`?options=-c …`), if it has any.
 * node-postgres takes the URL's `options` over the pool's `options`, so an operator's URL
 * that sets one would silently drop ours: the settings go into the URL, after the operator's.
 * A connection string that is not a URL is returned as it is.
 */
export function withSessionOptions(url: string, settings: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  parsed.searchParams.set('options', [parsed.searchParams.get('options'), settings].filter(Boolean).join(' '));
  return parsed.toString();
}
