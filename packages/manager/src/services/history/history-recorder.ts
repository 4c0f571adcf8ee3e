import { sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Db, Store } from '../../store/store.js';
import type { DeviceUpdate } from '../devices/status-buffer.js';
import { DEFAULT_RETENTION, bucketOf, minuteOf, type Retention } from './resolutions.js';
import { addFacts, emptySamples, type DeviceSamples, type Range } from './samples.js';

/** Rows per INSERT: 16 parameters a row stays far below both databases' parameter limits. */
const CHUNK = 500;

/**
 * Records each device's history from what the status buffer wrote: resource samples into
 * 1-minute and 15-minute buckets kept in memory, and presence transitions. A bucket is
 * written once it has closed (at the status buffer's next flush after that), one multi-row
 * upsert per chunk; the upsert merges min, max and sums, so buckets that several managers
 * (each with its share of a device's reports) or a restart wrote in parts add up exactly.
 *
 * What is in memory when the process dies is lost: up to a minute of fine samples and up to
 * 15 minutes of the coarse bucket being filled (docs/history.md).
 */
export class HistoryRecorder implements Service {
  readonly name = 'history recorder';
  readonly #db: Db;
  readonly #retention: Retention;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #onWritten: (rows: number) => void;
  /** Open buckets by resolution (minutes), then bucket, then device. */
  readonly #open = new Map<number, Map<number, Map<string, DeviceSamples>>>();
  /** The last presence this manager recorded per device: a transition is a change of it. */
  readonly #presence = new Map<string, string>();
  #transitions: Array<{ deviceId: string; at: string; state: string }> = [];
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: { store: Store; logger: Logger; retention?: Retention; now?: () => number; onWritten?: (rows: number) => void }) {
    this.#db = deps.store.write;
    this.#retention = deps.retention ?? DEFAULT_RETENTION;
    this.#now = deps.now ?? Date.now;
    this.#logger = deps.logger;
    this.#onWritten = deps.onWritten ?? (() => {});
    for (const r of [this.#retention.fine, this.#retention.coarse]) this.#open.set(r.minutes, new Map());
  }

  /** Closed buckets are written at least this often when no status flush comes (quiet fleets). */
  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.write(), 15_000);
    this.#timer.unref();
  }

  /** Writes everything, open buckets too (they merge with what the next start writes). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.write({ all: true });
  }

  /** What the status buffer wrote: called after each flush it committed. */
  observe(rows: Iterable<readonly [string, DeviceUpdate]>): void {
    for (const [deviceId, u] of rows) {
      // A last will carries no time of the device's (lastSeenAt absent): it took effect now.
      const at = u.lastSeenAt ?? new Date().toISOString();
      if (u.facts) {
        const minute = minuteOf(Date.parse(at));
        for (const [resolution, buckets] of this.#open) {
          const bucket = bucketOf(minute, resolution);
          let devices = buckets.get(bucket);
          if (!devices) buckets.set(bucket, devices = new Map());
          let acc = devices.get(deviceId);
          if (!acc) devices.set(deviceId, acc = emptySamples());
          addFacts(acc, u.facts);
        }
      }
      if (u.presence) this.presenceChanged(deviceId, u.presence, at);
    }
    if (this.#hasClosed()) void this.write();
  }

  /**
   * A device's presence as of `at`; recorded when it differs from the last one this manager
   * recorded. Anything that changes presence outside the status buffer may call it; what
   * nobody reports is caught by the fleet sampler's reconciliation within a minute.
   */
  presenceChanged(deviceId: string, state: string, at: string): void {
    if (this.#presence.get(deviceId) === state) return;
    this.#presence.set(deviceId, state);
    this.#transitions.push({ deviceId, at, state });
  }

  /** A decommissioned device: forget it and delete its history. */
  async removed(deviceId: string): Promise<void> {
    this.#presence.delete(deviceId);
    for (const buckets of this.#open.values()) for (const devices of buckets.values()) devices.delete(deviceId);
    await this.#db.deleteFrom('device_history').where('device_id', '=', deviceId).execute();
    await this.#db.deleteFrom('device_presence_history').where('device_id', '=', deviceId).execute();
  }

  /** Writes closed buckets and pending transitions (`all`: open buckets too); writes never overlap. */
  async write(opts: { all?: boolean } = {}): Promise<void> {
    while (this.#writing) await this.#writing;
    this.#writing = this.#write(opts.all ?? false).finally(() => { this.#writing = undefined; });
    await this.#writing;
  }

  #hasClosed(): boolean {
    if (this.#transitions.length > 0) return true;
    const minute = minuteOf(this.#now());
    for (const [resolution, buckets] of this.#open) {
      for (const bucket of buckets.keys()) if (bucket + resolution <= minute) return true;
    }
    return false;
  }

  async #write(all: boolean): Promise<void> {
    const minute = minuteOf(this.#now());
    const rows: Array<{ deviceId: string; resolution: number; bucket: number; s: DeviceSamples }> = [];
    for (const [resolution, buckets] of this.#open) {
      for (const [bucket, devices] of buckets) {
        if (!all && bucket + resolution > minute) continue;
        buckets.delete(bucket);
        for (const [deviceId, s] of devices) rows.push({ deviceId, resolution, bucket, s });
      }
    }
    const transitions = this.#transitions;
    this.#transitions = [];
    // In key order: with several managers on PostgreSQL each writes its share of the same
    // devices' buckets, and two upserts that lock the same rows in different orders deadlock
    // (seen in the cluster benchmark: "deadlock detected", the batch's samples lost).
    // Transitions by device, each device's still in time order (the sort is stable).
    rows.sort(bySample);
    transitions.sort(byDevice);
    try {
      for (let i = 0; i < rows.length; i += CHUNK) await upsertSamples(this.#db, rows.slice(i, i + CHUNK));
      // In time order, each only if the device's latest recorded state differs: another
      // manager may have recorded it already.
      for (let i = 0; i < transitions.length; i += CHUNK) await insertTransitions(transitions.slice(i, i + CHUNK)).execute(this.#db);
      if (rows.length > 0) this.#onWritten(rows.length);
    } catch (err) {
      // History is not worth a retry loop that could grow without bound: log and go on.
      this.#logger.error({ err, rows: rows.length, transitions: transitions.length }, 'writing device history failed; those samples are lost');
      for (const t of transitions) if (this.#presence.get(t.deviceId) === t.state) this.#presence.delete(t.deviceId);
    }
  }
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
// Functions of the module rather than closures made at each write (see task-reports.ts, `#work`).
const bySample = (a: { deviceId: string; resolution: number; bucket: number }, b: { deviceId: string; resolution: number; bucket: number }) => compareText(a.deviceId, b.deviceId) || a.resolution - b.resolution || a.bucket - b.bucket;
const byDevice = (a: { deviceId: string }, b: { deviceId: string }) => compareText(a.deviceId, b.deviceId);

/** One INSERT … ON CONFLICT for a chunk of buckets; a conflict merges the two. */
async function upsertSamples(db: Db, rows: Array<{ deviceId: string; resolution: number; bucket: number; s: DeviceSamples }>): Promise<void> {
  const range = (prefix: 'cpu' | 'mem_used' | 'ds_used', r: Range | null) => ({
    [`${prefix}_min`]: r?.min ?? null, [`${prefix}_max`]: r?.max ?? null, [`${prefix}_sum`]: r?.sum ?? null,
  }) as Record<`${typeof prefix}_${'min' | 'max' | 'sum'}`, number | null>;
  await db.insertInto('device_history')
    .values(rows.map(({ deviceId, resolution, bucket, s }) => ({
      device_id: deviceId, resolution, bucket, samples: s.samples,
      ...range('cpu', s.cpu), ...range('mem_used', s.memUsed), ...range('ds_used', s.dsUsed),
      mem_total: s.memTotal, ds_capacity: s.dsCapacity,
    })) as never)
    .onConflict((oc) => oc.columns(['device_id', 'resolution', 'bucket']).doUpdateSet({
      samples: sql`device_history.samples + excluded.samples`,
      ...mergeRange('cpu'), ...mergeRange('mem_used'), ...mergeRange('ds_used'),
      mem_total: sql`coalesce(excluded.mem_total, device_history.mem_total)`,
      ds_capacity: sql`coalesce(excluded.ds_capacity, device_history.ds_capacity)`,
    }))
    .execute();
}

/**
 * min, max and sum of two buckets where either side may be NULL. Written with CASE because
 * SQLite's two-argument min()/max() return NULL when an argument is, and PostgreSQL's
 * LEAST/GREATEST skip it.
 */
function mergeRange(prefix: 'cpu' | 'mem_used' | 'ds_used'): Record<string, RawBuilder<number>> {
  const old = (c: string) => sql.ref(`device_history.${prefix}_${c}`);
  const neu = (c: string) => sql.ref(`excluded.${prefix}_${c}`);
  return {
    [`${prefix}_min`]: sql<number>`case when ${neu('min')} is null or ${old('min')} < ${neu('min')} then coalesce(${old('min')}, ${neu('min')}) else ${neu('min')} end`,
    [`${prefix}_max`]: sql<number>`case when ${neu('max')} is null or ${old('max')} > ${neu('max')} then coalesce(${old('max')}, ${neu('max')}) else ${neu('max')} end`,
    [`${prefix}_sum`]: sql<number>`case when ${old('sum')} is null then ${neu('sum')} when ${neu('sum')} is null then ${old('sum')} else ${old('sum')} + ${neu('sum')} end`,
  };
}

/**
 * Inserts transitions (in time order), one statement for all: a device's first one in the
 * list only if its latest recorded state differs (another manager may have recorded it), the
 * ones after it always (each differs from the one before it, as `presenceChanged` keeps them).
 * One statement for a batch: a cluster's managers each record every device's first presence,
 * and a round trip each was thousands at once.
 */
export function insertTransitions(list: ReadonlyArray<{ deviceId: string; at: string; state: string }>): RawBuilder<unknown> {
  const seen = new Set<string>();
  const rows = list.map((t) => {
    const first = seen.has(t.deviceId) ? 0 : 1;
    seen.add(t.deviceId);
    return sql`(cast(${t.deviceId} as text), cast(${t.at} as text), cast(${t.state} as text), cast(${first} as integer))`;
  });
  return sql`with v(device_id, at, state, first) as (values ${sql.join(rows)})
    insert into device_presence_history (device_id, at, state)
    select v.device_id, v.at, v.state from v
    where v.first = 0 or coalesce((select h.state from device_presence_history h where h.device_id = v.device_id order by h.at desc limit 1), '') <> v.state
    on conflict do nothing`;
}
