import type { Vm } from '@pallas/protocol';
import { sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Db, Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import { byDeviceId, deviceIdOf } from './device-order.js';

/** What a succeeded task did to one VM: it returned the VM as it now is, or deleted it. */
export type VmChange = { deviceId: string; vm: Vm } | { deviceId: string; deletedVmId: string };

/** Lists written inside a caller's transaction, to hand back to `committed` after its commit. */
export interface InventoryWrite {
  changes: readonly VmChange[];
  written: Map<string, Vm[]>;
  /** The list each written one was made from: `committed` tells by it whether one came in meanwhile. */
  from: Map<string, Vm[]>;
}

/** No VM changed: what a flush without succeeded tasks hands to `committed`. */
export const NO_INVENTORY_WRITE: InventoryWrite = { changes: [], written: new Map(), from: new Map() };

interface Entry {
  vms: Vm[];
  /**
   * Compared to tell news from a repeat (see `sameKey`); made when first compared (`keyOf`).
   * A list another manager relayed is compared only when that device's report reaches this
   * manager, which most of them never do before the next list replaces them.
   */
  key?: string;
  /** Bumped on every change, so a flush can tell whether the list moved while it wrote. */
  version: number;
}

/** Rows per statement: two bound parameters per device in the CASE, one in the IN list. */
const CHUNK = 300;

/**
 * The one owner of each device's VM list, and the only writer of `devices.vms`. Two sources
 * send it events: status reports (the device's whole list, the authority: it also carries
 * what changed on the host outside Pallas) and succeeded tasks (one VM created, changed or
 * deleted, applied at once instead of at the next report). It keeps the last known list per
 * device, so the same list arriving again (a task's VM, then the report that follows it) is
 * no news: the live `vms` event goes out once per real change. Reported lists are written
 * behind, batched every `flushMs`; task changes are written in the transaction that stores
 * the tasks' results, so a task never reads `succeeded` before its VM shows.
 */
export class DeviceInventory implements Service {
  readonly name = 'device inventory';
  readonly #db: Db;
  /** PostgreSQL: lock the rows in id order before updating them (see writeLists). */
  readonly #lockFirst: boolean;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #flushMs: number;
  readonly #known = new Map<string, Entry>();
  /** Devices whose known list is not written yet. */
  #dirty = new Set<string>();
  /** Devices whose list a flush is writing right now. */
  #writing = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #flushing: Promise<void> | undefined;

  /** `flushMs`: how often reported lists are written; default 250 ms. */
  constructor(deps: { store: Store; events: EventBus; logger: Logger; flushMs?: number }) {
    this.#db = deps.store.write;
    this.#lockFirst = deps.store.dialect === 'postgres';
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#flushMs = deps.flushMs ?? 250;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.flush(), this.#flushMs);
    this.#timer.unref();
    this.#unsubscribe = this.#events.subscribe(({ event }) => {
      if (event.type === 'vms') this.#heard(event.deviceId, event.vms);
    }, (type) => type === 'vms');
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /** A status report's list: news only when it differs from the last known one. */
  reported(deviceId: string, vms: Vm[]): void {
    if (this.#set(deviceId, vms)) this.#dirty.add(deviceId);
  }

  /**
   * Applies succeeded tasks' changes inside the caller's transaction (in the order given) and
   * writes the new lists there. Nothing is announced or remembered until `committed`.
   */
  async applyInTransaction(tx: Db, changes: readonly VmChange[]): Promise<InventoryWrite> {
    const written = new Map<string, Vm[]>();
    if (changes.length === 0) return { changes, written, from: new Map() };
    const byDevice = changesByDevice(changes);
    const ids = [...byDevice.keys()];
    // The known list is the newest; a device not heard of since the start is read from the store.
    // A loop, not callbacks: this runs at every flush of task results (see task-reports.ts, `#work`).
    const unknown: string[] = [];
    const base = new Map<string, Vm[]>();
    for (const id of ids) {
      const e = this.#known.get(id);
      if (e) base.set(id, e.vms);
      else unknown.push(id);
    }
    for (let i = 0; i < unknown.length; i += CHUNK) {
      const rows = await tx.selectFrom('devices').select(['id', 'vms']).where('id', 'in', unknown.slice(i, i + CHUNK)).execute();
      for (const r of rows) base.set(r.id, r.vms === null ? [] : (JSON.parse(r.vms) as Vm[]));
    }
    for (const [id, vms] of base) written.set(id, applyChanges(vms, byDevice.get(id)!));
    // Only rows that still exist count (a device removed meanwhile is not brought back in memory).
    const stored = await writeLists(tx, [...written], this.#lockFirst);
    for (const id of written.keys()) if (!stored.has(id)) written.delete(id);
    return { changes, written, from: base };
  }

  /**
   * After the commit of `applyInTransaction`'s transaction: the lists become known and are
   * announced. A report that came in meanwhile is newer than the list the transaction started
   * from, so the changes are applied again on top of it (and that result is written behind).
   */
  committed(write: InventoryWrite): void {
    // Grouped only if a list changed meanwhile (rare).
    let byDevice: Map<string, VmChange[]> | undefined;
    for (const [id, written] of write.written) {
      const current = this.#known.get(id);
      // Nothing came in meanwhile (the usual case): the list written is the newest. Told by
      // identity, not by comparing keys: a key is every VM as JSON, and a fan-out's flush has
      // hundreds of lists to tell.
      if (!current || current.vms === write.from.get(id)) {
        this.#set(id, written);
        continue;
      }
      byDevice ??= changesByDevice(write.changes);
      const vms = applyChanges(current.vms, byDevice.get(id)!);
      this.#set(id, vms);
      if (sameKey(vms) !== sameKey(written)) this.#dirty.add(id);
    }
  }

  /** The device is gone: forget its list and anything not yet written. */
  removed(deviceId: string): void {
    this.#known.delete(deviceId);
    this.#dirty.delete(deviceId);
  }

  /** Writes the reported lists not written yet; concurrent calls share one write. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#dirty.size === 0) return;
    const batch = [...this.#dirty].flatMap((id) => { const e = this.#known.get(id); return e ? [[id, e] as const] : []; });
    this.#dirty = new Set();
    this.#writing = new Set(batch.map(([id]) => id));
    this.#flushing = this.#write(batch).finally(() => {
      this.#flushing = undefined;
      this.#writing = new Set();
    });
    await this.#flushing;
  }

  async #write(batch: ReadonlyArray<readonly [string, Entry]>): Promise<void> {
    const versions = batch.map(([id, e]) => [id, e.version] as const);
    try {
      await this.#db.transaction().execute((tx) => writeLists(tx, batch.map(([id, e]) => [id, e.vms]), this.#lockFirst));
    } catch (err) {
      this.#logger.error({ err }, 'writing device inventories failed; will retry');
      for (const [id] of batch) if (this.#known.has(id)) this.#dirty.add(id);
      return;
    }
    // A list that changed while this write ran (a task's commit in between) is written again.
    for (const [id, version] of versions) {
      const now = this.#known.get(id);
      if (now && now.version !== version) this.#dirty.add(id);
    }
  }

  /**
   * A `vms` event on the bus. Ours are the lists we hold already (the same array). One another
   * manager relayed (several managers: docs/scale-out.md) is a list that manager applied or
   * heard and writes itself: it becomes the known list here too, without an event or a write
   * of our own, unless we hold a report of our own not written yet (ours then goes as it is).
   * Without this, a device's report right after a task reached, two times in three, a manager
   * that had not stored the task's VM, which took the report for news: it wrote the device's
   * row again and announced the same list a second time, for nearly every device of a fan-out.
   * And a task's change applied on top of a stale list left out what another manager had added.
   */
  #heard(deviceId: string, vms: Vm[]): void {
    const prev = this.#known.get(deviceId);
    if (prev?.vms === vms || this.#dirty.has(deviceId) || this.#writing.has(deviceId)) return;
    // No key yet: under a fan-out every manager hears every device's new list, and keying each
    // one (every VM as JSON, sorted) was 1–2 % of a cluster manager's CPU (`perf`), for a
    // comparison most of them never meet (see `Entry.key`).
    this.#known.set(deviceId, { vms, version: (prev?.version ?? 0) + 1 });
  }

  /** Remembers and announces a list; false when it is no news. */
  #set(deviceId: string, vms: Vm[]): boolean {
    const key = sameKey(vms);
    const prev = this.#known.get(deviceId);
    if (prev && keyOf(prev) === key) return false;
    this.#known.set(deviceId, { vms, key, version: (prev?.version ?? 0) + 1 });
    this.#events.emit({ type: 'vms', deviceId, vms });
    return true;
  }
}

/** The changes of each device, in the order given. */
function changesByDevice(changes: readonly VmChange[]): Map<string, VmChange[]> {
  const by = new Map<string, VmChange[]>();
  for (const c of changes) {
    const list = by.get(c.deviceId);
    if (list) list.push(c);
    else by.set(c.deviceId, [c]);
  }
  return by;
}

/** Replaces (or adds) each returned VM by id and drops each deleted one. */
function applyChanges(vms: readonly Vm[], changes: readonly VmChange[]): Vm[] {
  let out = [...vms];
  for (const c of changes) {
    if ('vm' in c) {
      const at = out.findIndex((v) => v.id === c.vm.id);
      if (at >= 0) out[at] = c.vm;
      else out.push(c.vm);
    } else out = out.filter((v) => v.id !== c.deletedVmId);
  }
  return out;
}

/** The entry's key, made now if it has none yet. */
function keyOf(entry: Entry): string {
  return (entry.key ??= sameKey(entry.vms));
}

/** Lists that differ only in order are the same inventory (a task appends; a report lists as the host does). */
function sameKey(vms: readonly Vm[]): string {
  return JSON.stringify(vms.map((v) => JSON.stringify(v)).sort());
}

/** A function of the module rather than a closure made at each write (see task-reports.ts, `#work`). */
function listWhen([id, vms]: readonly [string, Vm[]]): RawBuilder<unknown> {
  return sql`when ${id} then ${JSON.stringify(vms)}`;
}

/** One UPDATE per chunk (the lists go in by CASE); returns the ids of the rows that exist. */
async function writeLists(db: Db, lists: ReadonlyArray<readonly [string, Vm[]]>, lockFirst = false): Promise<Set<string>> {
  const stored = new Set<string>();
  // In device id order, as the status buffer writes: managers sharing a database update the
  // same rows, and rows locked in different orders deadlock. An UPDATE … WHERE id IN (…)
  // locks rows in the order its plan meets them, so on PostgreSQL they are locked first, in id
  // order, by a SELECT … ORDER BY id FOR UPDATE (SQLite has one writer at a time: nothing to
  // order). That SELECT is a materialized CTE of the UPDATE rather than a statement of its
  // own: the same locks in the same order, one round trip instead of two.
  const sorted = [...lists].sort(byDeviceId);
  for (let i = 0; i < sorted.length; i += CHUNK) {
    const chunk = sorted.slice(i, i + CHUNK);
    const ids = chunk.map(deviceIdOf);
    const lists = sql<string>`case devices.id ${sql.join(chunk.map(listWhen), sql` `)} else devices.vms end`;
    const rows = lockFirst
      ? (await sql<{ id: string }>`with locked as materialized (select id from devices where id in (${sql.join(ids)}) order by id for update)
          update devices set vms = ${lists} from locked where devices.id = locked.id returning devices.id`.execute(db)).rows
      : await db.updateTable('devices').set({ vms: lists }).where('id', 'in', ids).returning('id').execute();
    for (const r of rows) stored.add(r.id);
  }
  return stored;
}
