import { randomBytes } from 'node:crypto';
import {
  planWaves, type CreateRollout, type PageOf, type Rollout, type RolloutDevice, type RolloutDeviceQuery, type RolloutDeviceState,
  type RolloutPlan, type RolloutPlanRequest, type RolloutQuery,
} from '@pallas/protocol';
import { AppError, notFound } from '../../errors.js';
import type { Db, Store } from '../../store/store.js';
import type { GroupsService } from '../groups/groups-service.js';
import type { EventBus } from '../live/event-bus.js';
import type { TasksService } from '../tasks/tasks-service.js';
import { busyDevices, lockMembership, resolveTarget, type RolloutEngine } from './rollout-engine.js';
import { policyOf } from './rollout-policy.js';
import { loadRollout, type RolloutRow, type StoredTarget } from './rollout-view.js';

let lastMs = 0;
let counter = 0;
/** `rol_` + ms + counter + random: sorts by creation. */
function newRolloutId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else counter++;
  return `rol_${lastMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(3, '0')}${randomBytes(4).toString('hex')}`;
}

type Target = Pick<CreateRollout, 'groupId' | 'tag' | 'deviceIds'>;

/** The rollouts API: create (checked whole before anything is written), read, pause, resume, abort. */
export class RolloutsService {
  readonly #write: Db;
  readonly #read: Db;
  readonly #tasks: TasksService;
  readonly #groups: GroupsService;
  readonly #engine: RolloutEngine;
  readonly #events: EventBus;
  readonly #dialect: Store['dialect'];

  constructor(deps: { store: Store; tasks: TasksService; groups: GroupsService; engine: RolloutEngine; events: EventBus }) {
    this.#write = deps.store.write;
    this.#read = deps.store.read;
    this.#tasks = deps.tasks;
    this.#groups = deps.groups;
    this.#engine = deps.engine;
    this.#events = deps.events;
    this.#dialect = deps.store.dialect;
  }

  /** Exactly one target; a group by id or name is stored by id. */
  async #target(t: Target): Promise<StoredTarget> {
    const given = [t.groupId, t.tag, t.deviceIds].filter((x) => x !== undefined).length;
    if (given !== 1) throw new AppError('invalid_request', 'body: give exactly one target: groupId, tag or deviceIds');
    if (t.groupId !== undefined) return { groupId: await this.#groups.idOf(t.groupId) };
    if (t.tag !== undefined) return { tag: t.tag };
    const known = new Set<string>();
    for (let i = 0; i < t.deviceIds!.length; i += 500) {
      for (const r of await this.#write.selectFrom('devices').select('id').where('id', 'in', t.deviceIds!.slice(i, i + 500)).execute()) known.add(r.id);
    }
    const unknown = t.deviceIds!.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new AppError('invalid_request', `${unknown.length} unknown device(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
    return { deviceIds: t.deviceIds! };
  }

  async plan(body: RolloutPlanRequest): Promise<RolloutPlan> {
    const devices = await resolveTarget(this.#read, this.#groups, await this.#target(body));
    const policy = policyOf({ ...(body.waves ? { waves: body.waves } : {}) });
    return { total: devices.length, waves: planWaves(devices.length, policy.waves) };
  }

  /**
   * Checks everything (target not empty, operation valid with its artifacts, policy in range,
   * no device already in another open rollout of the same operation), then writes the rollout,
   * its waves and its devices in one transaction: a refused rollout leaves nothing behind.
   */
  async create(body: CreateRollout, by: string): Promise<Rollout> {
    const target = await this.#target(body);
    const membership = body.membership ?? 'fixed';
    if (membership === 'dynamic' && target.deviceIds) throw new AppError('invalid_request', 'membership: dynamic needs a group or a tag target (a list of devices cannot grow)');
    const policy = policyOf(body);
    await this.#tasks.checkOperation(body.operation);
    const devices = await resolveTarget(this.#write, this.#groups, target);
    if (devices.length === 0) throw new AppError('invalid_request', `the target has no devices (${describe(target)}); nothing to roll out`);
    const refuseBusy = async (db: Db) => {
      const busy = await busyDevices(db, body.operation.kind, devices);
      if (busy.size > 0) {
        throw new AppError('conflict', `${busy.size} device(s) are already in a running or paused rollout of ${body.operation.kind}: ${[...busy].slice(0, 3).join(', ')}${busy.size > 3 ? ', …' : ''}; abort or finish it first`);
      }
    };
    // Early, cheap refusal; the check that counts is repeated under the lock below.
    await refuseBusy(this.#write);
    const sizes = planWaves(devices.length, policy.waves);
    const now = new Date();
    const at = now.toISOString();
    const row: RolloutRow = {
      id: newRolloutId(now.getTime()), name: body.name, state: 'running', pause_reason: null,
      operation_kind: body.operation.kind, operation: JSON.stringify(body.operation), target: JSON.stringify(target), membership,
      policy: JSON.stringify(policy), current_wave: 1, wave_count: sizes.length, base_failed: 0, base_finished: 0,
      created_by: by, created_at: at, updated_at: at, finished_at: null, deadline_at: new Date(now.getTime() + policy.deadlineSec * 1000).toISOString(),
    };
    const entries: Array<{ device_id: string; wave: number }> = [];
    sizes.forEach((size, i) => {
      const start = entries.length;
      for (let k = 0; k < size; k++) entries.push({ device_id: devices[start + k]!, wave: i + 1 });
    });
    // Race-free: the check and the insert in one transaction that holds the rollout-membership
    // lock (SQLite: the single writer connection; PostgreSQL: a transaction-scoped advisory lock,
    // the same the engine takes to add members to a dynamic rollout). Of two creates at the same
    // moment, the second sees the first's devices and is refused whole (409).
    await this.#write.transaction().execute(async (tx) => {
      await lockMembership(tx, this.#dialect);
      await refuseBusy(tx);
      await tx.insertInto('rollouts').values(row).execute();
      await tx.insertInto('rollout_waves').values(sizes.map((size, i) => ({ rollout_id: row.id, wave: i + 1, size, started_at: i === 0 ? at : null, gate_met_at: null }))).execute();
      for (let i = 0; i < entries.length; i += 500) {
        await tx.insertInto('rollout_devices').values(entries.slice(i, i + 500).map((e) => ({
          rollout_id: row.id, device_id: e.device_id, wave: e.wave, state: 'pending', task_id: null, attempts: 0,
          error_code: null, error_message: null, verify_until: null, updated_at: at, finished_at: null,
        }))).execute();
      }
    });
    this.#engine.nudge();
    return this.#emit(row.id);
  }

  async get(id: string, db: Db = this.#read): Promise<Rollout> {
    const row = await db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('rollout', id);
    return loadRollout(db, row);
  }

  /** Newest first. */
  async list(query: RolloutQuery): Promise<PageOf<Rollout>> {
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    let q = this.#read.selectFrom('rollouts');
    if (query.state) q = q.where('state', '=', query.state);
    const [rows, count] = await Promise.all([
      q.selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute(),
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: await Promise.all(rows.map((r) => loadRollout(this.#read, r))), total: Number(count.n), limit, offset };
  }

  async devices(id: string, query: RolloutDeviceQuery): Promise<PageOf<RolloutDevice>> {
    await this.get(id);
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    let q = this.#read.selectFrom('rollout_devices').leftJoin('devices', 'devices.id', 'rollout_devices.device_id').where('rollout_devices.rollout_id', '=', id);
    if (query.state) q = q.where('rollout_devices.state', '=', query.state);
    if (query.wave) q = q.where('rollout_devices.wave', '=', query.wave);
    const [rows, count] = await Promise.all([
      q.selectAll('rollout_devices').select('devices.name').orderBy('rollout_devices.wave').orderBy('devices.name').orderBy('rollout_devices.device_id').limit(limit).offset(offset).execute(),
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return {
      items: rows.map((r) => ({
        deviceId: r.device_id, name: r.name ?? '', wave: r.wave, state: r.state as RolloutDeviceState, taskId: r.task_id, attempts: r.attempts,
        error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null, updatedAt: r.updated_at, finishedAt: r.finished_at,
      })),
      total: Number(count.n), limit, offset,
    };
  }

  async pause(id: string): Promise<Rollout> {
    const before = await this.get(id, this.#write);
    if (!(await this.#engine.pause(id, 'by_operator'))) throw new AppError('conflict', `rollout ${id} is ${before.state}; only a running rollout can be paused`);
    return this.#emit(id);
  }

  async resume(id: string): Promise<Rollout> {
    const before = await this.get(id, this.#write);
    if (!(await this.#engine.resume(id))) throw new AppError('conflict', `rollout ${id} is ${before.state}; only a paused rollout can be resumed`);
    return this.#emit(id);
  }

  async abort(id: string, by: string): Promise<Rollout> {
    const before = await this.get(id, this.#write);
    if (!(await this.#engine.abort(id, 'by_operator', by))) throw new AppError('conflict', `rollout ${id} is ${before.state}; only a running or paused rollout can be aborted`);
    return this.#emit(id);
  }

  async #emit(id: string): Promise<Rollout> {
    const rollout = await this.get(id, this.#write);
    this.#events.emit({ type: 'rollout', rollout });
    return rollout;
  }
}

function describe(t: StoredTarget): string {
  if (t.groupId) return `group ${t.groupId}`;
  if (t.tag) return `tag ${t.tag}`;
  return `${t.deviceIds?.length ?? 0} device(s)`;
}
