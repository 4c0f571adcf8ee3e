/**
 * Databases to and from SQL text, for the migration fixtures: the house rule is to commit no
 * database files, so a fixture is the SQL that rebuilds one (schema, rows and Kysely's own
 * migration tables), one file per dialect.
 */
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import pg from 'pg';

const literal = (v: unknown): string => {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return `X'${v.toString('hex')}'`;
  return `'${String(v).replaceAll("'", "''")}'`;
};

/** Like sqlite3's `.dump`: every table's CREATE and its rows as INSERTs, then the indexes. */
export function dumpSqlite(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    db.defaultSafeIntegers(true); // integers beyond 2^53 stay exact
    const objects = db.prepare("select type, name, sql from sqlite_master where sql is not null and name not like 'sqlite_%' order by case type when 'table' then 0 else 1 end, rowid").all() as Array<{ type: string; name: string; sql: string }>;
    const out: string[] = ['PRAGMA foreign_keys=OFF;', 'BEGIN TRANSACTION;'];
    for (const o of objects) {
      out.push(`${o.sql};`);
      if (o.type !== 'table') continue;
      // Insertion order where there is a rowid; a WITHOUT ROWID table (history) is in key order.
      const order = /\bwithout\s+rowid\b/i.test(o.sql) ? '' : ' order by rowid';
      for (const row of db.prepare(`select * from "${o.name}"${order}`).all() as Array<Record<string, unknown>>) {
        const cols = Object.keys(row);
        out.push(`INSERT INTO "${o.name}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map((c) => literal(row[c])).join(', ')});`);
      }
    }
    out.push('COMMIT;');
    return `${out.join('\n')}\n`;
  } finally {
    db.close();
  }
}

export function loadSqlite(file: string, text: string): void {
  const db = new Database(file);
  try {
    db.exec(text);
  } finally {
    db.close();
  }
}

/**
 * pg_dump's plain SQL with INSERTs, without what would tie the text to one machine or one
 * client: comments (they carry the versions), and psql's `\restrict` lines (a random key per
 * run, and meta-commands only psql understands).
 */
export function dumpPostgres(url: string): string {
  const raw = execFileSync('pg_dump', ['--no-owner', '--no-privileges', '--column-inserts', '--dbname', url], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = raw.split('\n').filter((l) => !l.startsWith('--') && !l.startsWith('\\'));
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

export async function loadPostgres(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}
