import { randomUUID } from 'node:crypto';
import type { AuditActorKind, AuditEntry, AuditOutcome, AuditQuery, PageOf } from '@pallas/protocol';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { boundStatement, slot, type BoundStatement } from '../../store/bound-statement.js';
import type { Db, Store } from '../../store/store.js';

export interface AuditActor {
  kind: AuditActorKind;
  id?: string | undefined;
  name?: string | undefined;
}

export interface AuditTarget {
  kind: string;
  id: string;
  name?: string | undefined;
}

export interface AuditRecord {
  actor: AuditActor;
  /** Dotted verb: `user.create`, `login.failed`, `device.rename`, `device.revoke`… */
  action: string;
  target?: AuditTarget | undefined;
  outcome: AuditOutcome;
  ip?: string | undefined;
  /** Context; keys that look like secrets are replaced by `[redacted]` before storing. */
  detail?: Record<string, unknown> | undefined;
}

/** Keys whose values are never stored, at any depth of `detail`. */
const SECRET_KEY = /pass(word)?|secret|token|credential|authorization|cookie|hash|key$/i;
/** A detail larger than this is cut down to a marker: the log is for facts, not payloads. */
const MAX_DETAIL_CHARS = 4096;
const MAX_FIELD_CHARS = 256;
/**
 * Rows per transaction of the batched audit write: bounds how long one holds the connection.
 * On PostgreSQL a batch is one INSERT of 12 parameters a row: 6,000, under its 65,535.
 */
const MAX_BATCH = 500;

/** Copies `value`, replacing secret-looking keys and cutting long strings and deep nesting. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 4) return '[truncated]';
  if (typeof value === 'string') return value.length > MAX_FIELD_CHARS ? `${value.slice(0, MAX_FIELD_CHARS)}…` : value;
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value).slice(0, 40)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
    return out;
  }
  return value;
}

let lastMs = 0;
let counter = 0;
/**
 * `aud_` + ms (9 base-36 digits) + counter (4) + random (6): sorts by time, then creation order.
 * The random part (the first six hex digits of a v4 UUID, all random) only keeps two managers'
 * ids apart; randomUUID draws from a buffer Node refills 128 UUIDs at a time, where
 * randomBytes(4) was a call into OpenSSL per record (~2 µs, 1 % of an enrollment's CPU).
 */
function newAuditId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else {
    counter++;
  }
  return `aud_${lastMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${randomUUID().slice(0, 6)}`;
}

const clip = (s: string | undefined | null, n = MAX_FIELD_CHARS): string | null => (s == null ? null : s.length > n ? s.slice(0, n) : s);

type Row = {
  id: string; at: string; actor_kind: string; actor_id: string | null; actor_name: string | null; action: string;
  target_kind: string | null; target_id: string | null; target_name: string | null; outcome: string; ip: string | null; detail: string | null;
};

const ROW_COLUMNS = ['id', 'at', 'actor_kind', 'actor_id', 'actor_name', 'action', 'target_kind', 'target_id', 'target_name', 'outcome', 'ip', 'detail'] as const satisfies ReadonlyArray<keyof Row>;

/**
 * The one INSERT of a record, compiled once and bound to each row: every API call that changes
 * something writes a record, and building and compiling the insert with Kysely for each one
 * cost more than SQLite's insert itself.
 */
function compileInsert(db: Db): BoundStatement<keyof Row, unknown> {
  const values = Object.fromEntries(ROW_COLUMNS.map((c) => [c, slot(c)])) as Record<keyof Row, string>;
  return boundStatement(db.insertInto('audit_log').values(values).compile(), ROW_COLUMNS);
}

type TaskOutcomeRow = { id: string; state: string; error_code: string | null; error_message: string | null; late_result: string | null };

/** The ids of the tasks an entry's request started, cancelled or retried into (what the routes put in `detail`). */
export function taskIdOf(e: AuditEntry): string | undefined {
  const d = e.detail ?? {};
  for (const k of ['newTask', 'task', 'firstTask'] as const) if (typeof d[k] === 'string') return d[k];
  return e.target?.kind === 'task' ? e.target.id : undefined;
}

function toEntry(r: Row): AuditEntry {
  const entry: AuditEntry = {
    id: r.id,
    at: r.at,
    actor: { kind: r.actor_kind as AuditActorKind, ...(r.actor_id ? { id: r.actor_id } : {}), ...(r.actor_name ? { name: r.actor_name } : {}) },
    action: r.action,
    outcome: r.outcome as AuditOutcome,
  };
  if (r.target_kind && r.target_id) entry.target = { kind: r.target_kind, id: r.target_id, ...(r.target_name ? { name: r.target_name } : {}) };
  if (r.ip) entry.ip = r.ip;
  if (r.detail) entry.detail = JSON.parse(r.detail) as Record<string, unknown>;
  const error = entry.detail?.error as { code?: unknown; message?: unknown } | undefined;
  if (entry.outcome !== 'ok' && error && typeof error.code === 'string') entry.reason = { code: error.code, message: typeof error.message === 'string' ? error.message : '' };
  return entry;
}

/** `Row` keys in the order of the CSV export's columns. */
export const AUDIT_CSV_COLUMNS = [
  'id', 'at', 'actor_kind', 'actor_id', 'actor_name', 'action', 'target_kind', 'target_id', 'target_name', 'outcome', 'reason', 'task_id', 'task_state', 'ip', 'detail',
] as const;

/** One CSV field (RFC 4180); a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula. */
function csvField(v: unknown): string {
  let text = v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** An entry as one CSV line (with its CRLF). */
export function auditCsvLine(e: AuditEntry): string {
  const cells: Record<(typeof AUDIT_CSV_COLUMNS)[number], unknown> = {
    id: e.id, at: e.at, actor_kind: e.actor.kind, actor_id: e.actor.id, actor_name: e.actor.name, action: e.action,
    target_kind: e.target?.kind, target_id: e.target?.id, target_name: e.target?.name, outcome: e.outcome,
    reason: e.reason ? `${e.reason.code}: ${e.reason.message}` : undefined, task_id: e.task?.id,
    task_state: e.task ? (e.task.lateOutcome ? `${e.task.state} (late result: ${e.task.lateOutcome})` : e.task.state) : undefined,
    ip: e.ip, detail: e.detail,
  };
  return `${AUDIT_CSV_COLUMNS.map((c) => csvField(cells[c])).join(',')}\r\n`;
}

type Filters = Omit<AuditQuery, 'limit' | 'offset'>;

/** `user.` / `user*` → the prefix `user.` / `user`; an exact action → null. */
const prefixOf = (action: string): string | null => (action.endsWith('*') ? action.slice(0, -1) : action.endsWith('.') ? action : null);

/**
 * The audit log: every state-changing call, login, enrollment, approval and revocation, with
 * who did it, to what, when, from which address and how it went. Recording never throws: a
 * failure to write is logged loudly and counted, but does not undo or fail the action itself
 * (which has already happened when the record is written).
 */
export class AuditService {
  readonly #db: Db;
  readonly #read: Db;
  /** PostgreSQL: a batch is one multi-row INSERT (see #write). */
  readonly #postgres: boolean;
  readonly #logger: Logger | undefined;
  readonly #onError: (() => void) | undefined;
  /** Records waiting for the next batch write (see #write). */
  readonly #queue: Array<{ row: Row; done: () => void }> = [];
  #writing: Promise<void> | undefined;
  #insert: BoundStatement<keyof Row, unknown> | undefined;

  constructor(opts: { store: Store; logger?: Logger; onWriteError?: () => void }) {
    this.#db = opts.store.write;
    this.#read = opts.store.read;
    this.#postgres = opts.store.dialect === 'postgres';
    this.#logger = opts.logger;
    this.#onError = opts.onWriteError;
  }

  async record(rec: AuditRecord): Promise<void> {
    let row: Row;
    try {
      // A name that cannot be looked up is left out; the record is still written.
      rec = await this.#named(rec).catch(() => rec);
      let detail = rec.detail ? JSON.stringify(redact(rec.detail)) : null;
      if (detail && detail.length > MAX_DETAIL_CHARS) detail = JSON.stringify({ truncated: true, chars: detail.length });
      row = {
        id: newAuditId(),
        at: new Date().toISOString(),
        actor_kind: rec.actor.kind,
        actor_id: clip(rec.actor.id),
        actor_name: clip(rec.actor.name),
        action: clip(rec.action, 64)!,
        target_kind: rec.target ? clip(rec.target.kind, 64) : null,
        target_id: rec.target ? clip(rec.target.id) : null,
        target_name: rec.target ? clip(rec.target.name) : null,
        outcome: rec.outcome,
        ip: clip(rec.ip, 64),
        detail,
      };
    } catch (err) {
      this.#failed(err, rec.action);
      return;
    }
    // Resolves once the row is stored (or its failure logged and counted), as before.
    return new Promise<void>((resolve) => {
      this.#queue.push({ row, done: resolve });
      this.#writing ??= this.#write();
    });
  }

  /** Resolves once every record queued so far is written (the manager's stop waits for it). */
  async drain(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /**
   * Writes the queued rows, one transaction per batch (on PostgreSQL one statement). A burst of calls (an enrollment wave,
   * a bulk operation) is a burst of records, and on SQLite a record in a commit of its own cost
   * about as much as the enrollment's whole transaction (a commit writes every page it touched,
   * the audit table's and its three indexes', to the WAL; docs/benchmarks.md). The records of
   * the requests answered in the same turn of the event loop, and those that arrive while a
   * batch is being written, share a commit. Rows keep their ids (time order) whatever batch
   * they are in.
   */
  async #write(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Cleared in the same step as the last look at the queue: a record queued after it
    // starts a new write, never waits in a queue nobody writes.
    for (;;) {
      if (this.#queue.length === 0) {
        this.#writing = undefined;
        return;
      }
      const batch = this.#queue.splice(0, MAX_BATCH);
      try {
        if (this.#postgres) {
          // One statement for the batch, atomic by itself: on PostgreSQL every statement is a
          // round trip (BEGIN, a row each and COMMIT were the batch's rows + 2), and its socket
          // write cost the manager more than building the statement does.
          await this.#db.insertInto('audit_log').values(batch.map(({ row }) => row)).execute();
        } else {
          // SQLite has no round trips: one prepared statement a row (a statement per batch size
          // would crowd its statement cache), one commit per batch.
          const insert = this.#insertStatement();
          await this.#db.transaction().execute(async (tx) => {
            for (const { row } of batch) await tx.executeQuery(insert.bind(row));
          });
        }
      } catch {
        // One bad row must not cost the others their record: each alone, as before batching.
        for (const { row } of batch) {
          try {
            await this.#db.executeQuery(this.#insertStatement().bind(row));
          } catch (err) {
            this.#failed(err, row.action);
          }
        }
      }
      for (const { done } of batch) done();
    }
  }

  /** Compiled at the first write (inside its error handling: a store that cannot compile fails like one that cannot write). */
  #insertStatement(): BoundStatement<keyof Row, unknown> {
    this.#insert ??= compileInsert(this.#db);
    return this.#insert;
  }

  #failed(err: unknown, action: string): void {
    this.#onError?.();
    this.#logger?.error({ err, action }, 'could not write the audit log');
  }

  /**
   * Fills in the target's name where the route knew only its id: a device's name, a VM's name
   * on its device (`detail.device`, whose name goes into `detail.deviceName`), a task's device
   * and operation. Names are written with the entry, as they were then (docs/access-control.md#audit-log).
   */
  async #named(rec: AuditRecord): Promise<AuditRecord> {
    const t = rec.target;
    if (!t || t.name !== undefined) return rec;
    if (t.kind === 'device') {
      const row = await this.#db.selectFrom('devices').select('name').where('id', '=', t.id).executeTakeFirst();
      return row ? { ...rec, target: { ...t, name: row.name } } : rec;
    }
    if (t.kind === 'vm' && typeof rec.detail?.device === 'string') {
      const row = await this.#db.selectFrom('devices').select(['name', 'vms']).where('id', '=', rec.detail.device).executeTakeFirst();
      if (!row) return rec;
      const vm = row.vms ? (JSON.parse(row.vms) as Array<{ id: string; name: string }>).find((v) => v.id === t.id) : undefined;
      return { ...rec, target: { ...t, ...(vm ? { name: vm.name } : {}) }, detail: { ...rec.detail, deviceName: row.name } };
    }
    if (t.kind === 'task') {
      const row = await this.#db.selectFrom('tasks').select(['kind', 'device_name']).where('id', '=', t.id).executeTakeFirst();
      return row ? { ...rec, target: { ...t, name: row.device_name ? `${row.kind} on ${row.device_name}` : row.kind } } : rec;
    }
    return rec;
  }

  #filtered(q: Filters) {
    let query = this.#read.selectFrom('audit_log');
    if (q.actor) query = query.where((eb) => eb.or([eb('actor_name', '=', q.actor!), eb('actor_id', '=', q.actor!)]));
    if (q.action) {
      const prefix = prefixOf(q.action);
      // A prefix match without LIKE (whose `_` is a wildcard) or a string range (which
      // PostgreSQL's locale collations do not order bytewise).
      query = prefix !== null
        ? query.where(sql<boolean>`substr(action, 1, ${prefix.length}) = ${prefix}`)
        : query.where('action', '=', q.action);
    }
    for (const action of q.exclude ? q.exclude.split(',') : []) {
      const prefix = prefixOf(action);
      query = prefix !== null
        ? query.where(sql<boolean>`substr(action, 1, ${prefix.length}) <> ${prefix}`)
        : query.where('action', '<>', action);
    }
    if (q.target) query = query.where((eb) => eb.or([eb('target_id', '=', q.target!), eb('target_name', '=', q.target!)]));
    if (q.outcome) query = query.where('outcome', '=', q.outcome);
    if (q.since) query = query.where('at', '>=', new Date(q.since).toISOString());
    if (q.until) query = query.where('at', '<', new Date(q.until).toISOString());
    return query;
  }

  /** Adds each entry's task as it stands now (one query for the page; entries are never rewritten). */
  async #withTasks(entries: AuditEntry[]): Promise<AuditEntry[]> {
    const ids = [...new Set(entries.map(taskIdOf).filter((id): id is string => id !== undefined))];
    if (ids.length === 0) return entries;
    const rows = new Map<string, TaskOutcomeRow>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = await this.#read.selectFrom('tasks').select(['id', 'state', 'error_code', 'error_message', 'late_result']).where('id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of chunk) rows.set(r.id, r);
    }
    return entries.map((e) => {
      const id = taskIdOf(e);
      const r = id === undefined ? undefined : rows.get(id);
      if (!r) return e;
      const late = r.late_result ? (JSON.parse(r.late_result) as { outcome: string }).outcome : undefined;
      return {
        ...e,
        task: {
          id: r.id, state: r.state,
          ...(r.error_code ? { error: { code: r.error_code, message: r.error_message ?? '' } } : {}),
          ...(late ? { lateOutcome: late } : {}),
        },
      };
    });
  }

  /** Newest first, filtered; see AuditQuery. */
  async list(q: AuditQuery): Promise<PageOf<AuditEntry>> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const query = this.#filtered(q);
    const rows = await query.selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute();
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: await this.#withTasks(rows.map(toEntry)), total: Number(n), limit, offset };
  }

  /**
   * Every matching entry, newest first, `batch` at a time (keyset paging on the id, so entries
   * written meanwhile neither repeat nor shift the rest): what the export streams.
   */
  async *all(q: Filters, batch = 500): AsyncGenerator<AuditEntry[]> {
    let before: string | undefined;
    for (;;) {
      let query = this.#filtered(q);
      if (before !== undefined) query = query.where('id', '<', before);
      const rows = await query.selectAll().orderBy('id', 'desc').limit(batch).execute();
      if (rows.length === 0) return;
      yield await this.#withTasks(rows.map(toEntry));
      if (rows.length < batch) return;
      before = rows[rows.length - 1]!.id;
    }
  }

  /** Drops entries older than `days`; the manager runs it daily so the log stays bounded. */
  async prune(days: number): Promise<number> {
    const cutoff = new Date(Date.now() - days * 86_400_000).toISOString();
    const res = await this.#db.deleteFrom('audit_log').where('at', '<', cutoff).executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }
}
