import { randomBytes } from 'node:crypto';
import type { AuditActorKind, AuditEntry, AuditOutcome, AuditQuery, PageOf } from '@pallas/protocol';
import { sql } from 'kysely';
import type { Logger } from 'pino';
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
/** `aud_` + ms (9 base-36 digits) + counter (4) + random (6): sorts by time, then creation order. */
function newAuditId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else {
    counter++;
  }
  return `aud_${lastMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${randomBytes(4).toString('hex').slice(0, 6)}`;
}

const clip = (s: string | undefined | null, n = MAX_FIELD_CHARS): string | null => (s == null ? null : s.length > n ? s.slice(0, n) : s);

type Row = {
  id: string; at: string; actor_kind: string; actor_id: string | null; actor_name: string | null; action: string;
  target_kind: string | null; target_id: string | null; target_name: string | null; outcome: string; ip: string | null; detail: string | null;
};

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
  return entry;
}

/**
 * The audit log: every state-changing call, login, enrollment, approval and revocation, with
 * who did it, to what, when, from which address and how it went. Recording never throws: a
 * failure to write is logged loudly and counted, but does not undo or fail the action itself
 * (which has already happened when the record is written).
 */
export class AuditService {
  readonly #db: Db;
  readonly #read: Db;
  readonly #logger: Logger | undefined;
  readonly #onError: (() => void) | undefined;

  constructor(opts: { store: Store; logger?: Logger; onWriteError?: () => void }) {
    this.#db = opts.store.write;
    this.#read = opts.store.read;
    this.#logger = opts.logger;
    this.#onError = opts.onWriteError;
  }

  async record(rec: AuditRecord): Promise<void> {
    try {
      let detail = rec.detail ? JSON.stringify(redact(rec.detail)) : null;
      if (detail && detail.length > MAX_DETAIL_CHARS) detail = JSON.stringify({ truncated: true, chars: detail.length });
      await this.#db.insertInto('audit_log').values({
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
      }).execute();
    } catch (err) {
      this.#onError?.();
      this.#logger?.error({ err, action: rec.action }, 'could not write the audit log');
    }
  }

  /** Newest first, filtered; see AuditQuery. */
  async list(q: AuditQuery): Promise<PageOf<AuditEntry>> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    let query = this.#read.selectFrom('audit_log');
    if (q.actor) query = query.where((eb) => eb.or([eb('actor_name', '=', q.actor!), eb('actor_id', '=', q.actor!)]));
    if (q.action) {
      const prefix = q.action.endsWith('*') ? q.action.slice(0, -1) : q.action.endsWith('.') ? q.action : null;
      // A prefix match without LIKE (whose `_` is a wildcard) or a string range (which
      // PostgreSQL's locale collations do not order bytewise).
      query = prefix !== null
        ? query.where(sql<boolean>`substr(action, 1, ${prefix.length}) = ${prefix}`)
        : query.where('action', '=', q.action);
    }
    if (q.target) query = query.where('target_id', '=', q.target);
    if (q.outcome) query = query.where('outcome', '=', q.outcome);
    if (q.since) query = query.where('at', '>=', new Date(q.since).toISOString());
    if (q.until) query = query.where('at', '<', new Date(q.until).toISOString());
    const rows = await query.selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute();
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { items: rows.map(toEntry), total: Number(n), limit, offset };
  }

  /** Drops entries older than `days`; the manager runs it daily so the log stays bounded. */
  async prune(days: number): Promise<number> {
    const cutoff = new Date(Date.now() - days * 86_400_000).toISOString();
    const res = await this.#db.deleteFrom('audit_log').where('at', '<', cutoff).executeTakeFirst();
    return Number(res.numDeletedRows ?? 0);
  }
}
