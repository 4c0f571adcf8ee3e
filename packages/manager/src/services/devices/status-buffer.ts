import type { HostFacts, Presence } from '@pallas/protocol';
import { sql, type CompiledQuery, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import { boundStatement, slot } from '../../store/bound-statement.js';
import { storeAnswers, type Db, type Store } from '../../store/store.js';
import { byDeviceId, deviceIdOf } from './device-order.js';

export interface DeviceUpdate {
  presence?: Presence;
  /**
   * When the manager received the device's message. Absent for a last will: the broker sends
   * it, not the device, so the device's last contact stays what it was (docs/manager.md).
   */
  lastSeenAt?: string;
  /**
   * When the manager received the message, where that is not `lastSeenAt`: a last will's
   * arrival. It orders the update against reports other managers stored (statusSet) without
   * making the will the device's last contact.
   */
  heardAt?: string;
  facts?: HostFacts;
  seq?: number;
}

interface Pending extends DeviceUpdate {
  /** How many messages this pending row stands for (coalesced into one write). */
  messages: number;
  /** Flushes in which this row failed on its own while other rows were written. */
  failures?: number;
}

/** A row the database refused this many times, alone, while it took others, is dropped. */
const MAX_ROW_FAILURES = 3;

/**
 * Rows per statement in a flush. Nine bound parameters a row: 4,500 a statement, well under
 * PostgreSQL's 65,535 and SQLite's 32,766.
 */
export const STATUS_CHUNK = 500;

/**
 * Write-behind buffer for device status and presence. Devices report often and only the
 * latest report matters, so updates are merged per device in memory and written in one
 * transaction every `flushMs`. A burst of 10,000 reports for 2,000 devices costs 2,000
 * row updates, not 10,000. The VM list is not written here: its one writer is DeviceInventory.
 */
export class StatusBuffer implements Service {
  readonly name = 'status buffer';
  readonly #db: Db;
  /** PostgreSQL: the VALUES' parameters need their types, and rows are locked in id order first. */
  readonly #postgres: boolean;
  readonly #flushMs: number;
  readonly #logger: Logger;
  readonly #onFlushed: (messages: number, rows: number) => void;
  readonly #beforeFlush: (() => Promise<void>) | undefined;
  #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #compiledUpdate: ReturnType<typeof compileUpdate> | undefined;
  /** Chunk statements by row count: the full chunk and the last few remainders. */
  readonly #compiledChunks = new Map<number, CompiledChunk>();
  /** Told what each flush wrote, after it committed (the history recorder listens here). */
  onWritten: ((rows: ReadonlyArray<readonly [string, DeviceUpdate]>) => void) | undefined;

  /**
   * `beforeFlush` runs before each write: the inventory's, so that a device never shows online
   * (or with new facts) before the VM list that came with the same reports.
   */
  constructor(store: Store, flushMs: number, logger: Logger, onFlushed: (messages: number, rows: number) => void, beforeFlush?: () => Promise<void>) {
    // Status and presence are the latest report, replaced by the next one (a lost "offline"
    // caught by the stale-presence or unresponsive sweep): what a crash of the database
    // server may lose (docs/manager.md, Store).
    this.#db = store.lazy;
    this.#postgres = store.dialect === 'postgres';
    this.#flushMs = flushMs;
    this.#logger = logger;
    this.#onFlushed = onFlushed;
    this.#beforeFlush = beforeFlush;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.flush(), this.#flushMs);
    this.#timer.unref();
  }

  offer(deviceId: string, update: DeviceUpdate): void {
    const prev = this.#pending.get(deviceId);
    this.#pending.set(deviceId, prev ? { ...prev, ...stripUndefined(update), messages: prev.messages + 1 } : { ...update, messages: 1 });
  }

  /** Drops anything buffered for a device that no longer exists. */
  discard(deviceId: string): void {
    this.#pending.delete(deviceId);
  }

  /** Writes everything buffered so far; concurrent calls share one write. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#pending.size === 0) return;
    await this.#beforeFlush?.().catch((err: unknown) => this.#logger.error({ err }, 'could not write VM lists before the status'));
    while (this.#flushing) await this.#flushing;
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = this.#write(batch).finally(() => {
      this.#flushing = undefined;
    });
    await this.#flushing;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  #update(): ReturnType<typeof compileUpdate> {
    this.#compiledUpdate ??= compileUpdate(this.#db, this.#postgres);
    return this.#compiledUpdate;
  }

  #chunk(rows: number): CompiledChunk {
    let chunk = this.#compiledChunks.get(rows);
    if (!chunk) {
      // The full chunk stays; of the remainders (one per flush, of any size) only the last few.
      if (this.#compiledChunks.size >= 4) {
        for (const n of this.#compiledChunks.keys()) if (n !== STATUS_CHUNK) { this.#compiledChunks.delete(n); break; }
      }
      chunk = compileChunk(this.#db, this.#postgres, rows);
      this.#compiledChunks.set(rows, chunk);
    }
    return chunk;
  }

  /**
   * The whole flush is one transaction of set-based statements: one UPDATE … FROM (VALUES …)
   * per chunk of STATUS_CHUNK rows, so that on PostgreSQL a flush costs a round trip per 500
   * rows, not per row. One transaction, not one per chunk, so that a refused row fails the
   * whole flush and the one-by-one fallback below sees every row as it was (a committed chunk
   * would have to be told apart from the rest), and `onWritten` hears of a flush once.
   *
   * Deadlocks: several managers flush the same devices at once (each gets its share of their
   * messages), and rows locked in different orders deadlock. Rows go in device id order, chunk
   * after chunk; an UPDATE … FROM locks rows in the order its plan meets them (a hash join:
   * any order), so on PostgreSQL each chunk's rows are locked first with SELECT … ORDER BY id
   * FOR UPDATE. Every flush thus takes its locks in ascending id order, as DeviceInventory's
   * writes do. SQLite has one writer at a time: nothing to order.
   */
  async #writeChunks(tx: Db, rows: Array<[string, Pending]>): Promise<void> {
    for (let i = 0; i < rows.length; i += STATUS_CHUNK) {
      const chunk = rows.slice(i, i + STATUS_CHUNK);
      if (this.#postgres) await tx.selectFrom('devices').select('id').where('id', 'in', chunk.map(deviceIdOf)).orderBy('id').forUpdate().execute();
      await tx.executeQuery(this.#chunk(chunk.length).bind(chunk));
    }
  }

  async #write(batch: Map<string, Pending>): Promise<void> {
    try {
      const rows = sortedById(batch);
      await this.#db.transaction().execute((tx) => this.#writeChunks(tx, rows));
      this.#onFlushed(countMessages(batch.values()), batch.size);
      this.onWritten?.([...batch]);
    } catch (err) {
      // One row the database refuses (a value out of its column's range) must not hold back
      // every other device's status: write the rows one by one to find it. When some rows go
      // in, the store works and the others are at fault; when none does, it is the store.
      const failed = batch.size > 1 && await storeAnswers(this.#db) ? await this.#writeOneByOne(batch) : batch;
      const storeWorks = failed.size < batch.size;
      for (const [id, u] of failed) {
        const failures = (u.failures ?? 0) + (storeWorks ? 1 : 0);
        if (failures >= MAX_ROW_FAILURES) {
          this.#logger.error({ device: id, err }, 'the store refused this device\'s status %d times while taking others; dropped', failures);
          continue;
        }
        // Put the row back (newer updates win) so a passing store error loses nothing.
        const newer = this.#pending.get(id);
        this.#pending.set(id, newer ? { ...u, ...stripUndefined(newer), messages: u.messages + newer.messages, failures } : { ...u, failures });
      }
      this.#logger.error({ err, rows: batch.size, failed: failed.size }, 'writing device status failed; will retry');
    }
  }

  /** Writes each row in its own statement; returns the rows that failed. */
  async #writeOneByOne(batch: Map<string, Pending>): Promise<Map<string, Pending>> {
    const update = this.#update();
    const failed = new Map<string, Pending>();
    for (const [id, u] of sortedById(batch)) {
      try {
        await this.#db.executeQuery(update.bind(id, u));
      } catch {
        failed.set(id, u);
      }
    }
    const written = [...batch].filter(([id]) => !failed.has(id)).map(([, u]) => u);
    if (written.length > 0) this.#onFlushed(countMessages(written), written.length);
    this.onWritten?.([...batch].filter(([id]) => !failed.has(id)));
    return failed;
  }
}

function sortedById(batch: Map<string, Pending>): Array<[string, Pending]> {
  return [...batch].sort(byDeviceId);
}

function countMessages(rows: Iterable<Pending>): number {
  let n = 0;
  for (const u of rows) n += u.messages;
  return n;
}

/** The values a row binds, in the order of the chunk statement's VALUES columns. */
const CHUNK_COLUMNS = ['id', 'heard', 'seen', 'updated', 'presence', 'facts', 'kind', 'agent', 'seq'] as const;
type ChunkColumn = typeof CHUNK_COLUMNS[number];
/** Column types as the migrations made them (001-initial): all text but status_seq. */
const CHUNK_TYPES: Record<ChunkColumn, 'text' | 'integer'> = {
  id: 'text', heard: 'text', seen: 'text', updated: 'text', presence: 'text', facts: 'text', kind: 'text', agent: 'text', seq: 'integer',
};

interface CompiledChunk { bind(rows: ReadonlyArray<readonly [string, DeviceUpdate]>): CompiledQuery }

/**
 * One UPDATE for `n` rows, the same for both dialects but for the casts:
 *
 *   WITH v(id, seen, …) AS (VALUES (?, ?, …), …)
 *   UPDATE devices SET last_seen_at = …, facts = … (statusSet) FROM v
 *   WHERE devices.id = v.id
 *
 * The same as the per-row statement below (compileUpdate): absent fields are NULLs that
 * COALESCE keeps at their stored value, `updated_at` is the message's time or now. A CTE with
 * a column list, because SQLite (≥ 3.33 for UPDATE … FROM) cannot name a VALUES' columns with
 * `AS v(…)`. PostgreSQL types each VALUES column from its parameters, untyped as node-postgres
 * sends them (text), so each gets its column's type by a cast; SQLite gets none, so that a
 * value is stored with the column's affinity exactly as when bound to it directly.
 */
function compileChunk(db: Db, postgres: boolean, n: number): CompiledChunk {
  const param = (column: ChunkColumn) => (postgres ? sql`cast(${null} as ${sql.raw(CHUNK_TYPES[column])})` : sql`${null}`);
  const row = sql`(${sql.join(CHUNK_COLUMNS.map(param))})`;
  const values = sql.join(Array.from({ length: n }, () => row));
  type V = { [K in ChunkColumn]: K extends 'seq' ? number | null : string | null };
  const compiled = db
    .with(`v(${CHUNK_COLUMNS.join(', ')})` as 'v', () => sql<V>`(values ${values})`)
    .updateTable('devices')
    .from('v')
    .set(statusSet((c) => sql.ref(`v.${c}`)))
    .whereRef('devices.id', '=', 'v.id')
    .compile();
  // Every parameter is a VALUES one, row after row, column after column.
  if (compiled.parameters.length !== n * CHUNK_COLUMNS.length) throw new Error(`status chunk: ${compiled.parameters.length} parameters for ${n} rows`);
  return {
    bind(rows) {
      if (rows.length !== n) throw new Error(`status chunk of ${n} rows bound to ${rows.length}`);
      const parameters: unknown[] = [];
      for (const [id, u] of rows) {
        const r = rowValues(id, u);
        for (const c of CHUNK_COLUMNS) parameters.push(r[c]);
      }
      return { ...compiled, parameters };
    },
  };
}

/**
 * The SET of both statements, given where a row's new value of each column comes from.
 *
 * A row received before the one stored (`heard` older than `last_seen_at`) changes nothing.
 * With one manager that never happens: its flushes go out in the order it received. With
 * several managers (docs/scale-out.md) a device's reports are shared among them and each
 * flushes on its own timer, so an older report could land after a newer one and put the
 * device's facts, presence and last contact back in time until its next report. A last will
 * is ordered by its arrival: one flushed after the `online` of the device's next connection,
 * stored by another manager, would show a connected device offline. A row without a time (a
 * test's partial row) has nothing to compare and is written.
 */
function statusSet(value: (column: ChunkColumn) => RawBuilder<unknown>) {
  const stale = sql`(${value('heard')} is not null and devices.last_seen_at is not null and ${value('heard')} < devices.last_seen_at)`;
  const unlessStale = <T>(column: string, fresh: RawBuilder<unknown>) => sql<T>`case when ${stale} then ${sql.ref(`devices.${column}`)} else ${fresh} end`;
  const orKept = (c: ChunkColumn, column: string) => sql`coalesce(${value(c)}, ${sql.ref(`devices.${column}`)})`;
  return {
    last_seen_at: unlessStale<string>('last_seen_at', orKept('seen', 'last_seen_at')),
    updated_at: unlessStale<string>('updated_at', value('updated')),
    presence: unlessStale<string>('presence', orKept('presence', 'presence')),
    facts: unlessStale<string>('facts', orKept('facts', 'facts')),
    hypervisor_kind: unlessStale<string>('hypervisor_kind', orKept('kind', 'hypervisor_kind')),
    agent_version: unlessStale<string>('agent_version', orKept('agent', 'agent_version')),
    status_seq: unlessStale<number>('status_seq', orKept('seq', 'status_seq')),
  };
}

/** What a row writes (NULL: keep the stored value), for both the chunk and the per-row statement. */
function rowValues(id: string, u: DeviceUpdate): Record<ChunkColumn, unknown> {
  return {
    id,
    // The later of the two: a row may merge a will and a report that came after it.
    heard: u.heardAt !== undefined && (u.lastSeenAt === undefined || u.heardAt > u.lastSeenAt) ? u.heardAt : u.lastSeenAt ?? null,
    seen: u.lastSeenAt ?? null,
    updated: u.lastSeenAt ?? new Date().toISOString(),
    presence: u.presence ?? null,
    facts: u.facts ? JSON.stringify(u.facts) : null,
    kind: u.facts?.hypervisor.kind ?? null,
    agent: u.facts?.agentVersion ?? null,
    seq: u.seq ?? null,
  };
}

/**
 * One UPDATE for one buffered row (the fallback that finds a refused row), compiled once:
 * building and compiling a Kysely query per row was most of the cost of a flush. Absent
 * fields are NULL parameters that COALESCE keeps at their stored value.
 */
function compileUpdate(db: Db, postgres: boolean): { bind(id: string, u: DeviceUpdate): CompiledQuery } {
  // PostgreSQL infers no type for a bare parameter (`$1 is not null`): each gets its column's.
  const param = (c: ChunkColumn) => (postgres ? sql`cast(${slot(c)} as ${sql.raw(CHUNK_TYPES[c])})` : sql`${slot(c)}`);
  const compiled = db.updateTable('devices')
    .set(statusSet(param))
    .where('id', '=', slot('id'))
    .compile();
  const statement = boundStatement(compiled, CHUNK_COLUMNS);
  return { bind: (id, u) => statement.bind(rowValues(id, u)) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
