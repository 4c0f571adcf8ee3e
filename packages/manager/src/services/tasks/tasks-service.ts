import {
  TASK_TIMEOUT_DEFAULT_SEC, artifactIdsOf, type ArtifactKind, type BulkTaskRequest, type BulkTaskResponse, type PageOf, type Task, type TaskOperation,
  type TaskQuery, type HostFacts, type Vm,
} from '@pallas/protocol';
import type { Logger } from 'pino';
import { AppError, notFound } from '../../errors.js';
import type { Db, Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import { checkAgainstLastReport } from './host-check.js';
import { newTaskId } from './task-id.js';
import { ACTIVE, loadTaskRows, toTask, type TaskRow } from './task-row.js';
import type { TaskOutbox } from './task-outbox.js';
import { storableText } from '../../store/storable-text.js';

export interface CreateOptions {
  timeoutSec?: number;
  /** Queue it even if the device's last report says it cannot succeed (host-check.ts). Default false. */
  force?: boolean;
  /** Username of the operator (or system component) asking. */
  createdBy: string;
}

const RETRYABLE = new Set(['failed', 'cancelled', 'timed_out']);

/** The kind of artifact each operation that names one needs. */
const NEEDED_KIND: Partial<Record<TaskOperation['kind'], ArtifactKind>> = { 'vm.deploy': 'ova', 'device.patch': 'patch', 'agent.update': 'agent' };

/** The task API: create (one device or many), list, get, cancel, retry. */
export class TasksService {
  readonly #write: Db;
  readonly #read: Db;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #artifactKinds: ((ids: readonly string[]) => Promise<Map<string, ArtifactKind>>) | undefined;
  readonly #groupMembers: ((groupId: string) => Promise<string[]>) | undefined;

  constructor(deps: {
    store: Store; outbox: TaskOutbox; events: EventBus; logger: Logger;
    /** The kinds of the artifacts that exist among these ids (the artifacts service). */
    artifactKinds?: (ids: readonly string[]) => Promise<Map<string, ArtifactKind>>;
    /** A group's member ids now (the groups service), for bulk tasks to a group. */
    groupMembers?: (groupId: string) => Promise<string[]>;
  }) {
    this.#write = deps.store.write;
    this.#read = deps.store.read;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#artifactKinds = deps.artifactKinds;
    this.#groupMembers = deps.groupMembers;
  }

  /**
   * An operation naming an artifact is refused before it becomes a task when the artifact does
   * not exist or is of the wrong kind (400 either way: the body is wrong, not the URL).
   */
  async #checkArtifacts(operation: TaskOperation): Promise<void> {
    const ids = artifactIdsOf(operation);
    if (ids.length === 0 || !this.#artifactKinds) return;
    const kinds = await this.#artifactKinds(ids);
    const needed = NEEDED_KIND[operation.kind];
    for (const id of ids) {
      const kind = kinds.get(id);
      if (!kind) throw new AppError('invalid_request', `artifact ${id} does not exist; upload it first (pallas artifacts upload) or check the id (pallas artifacts ls)`);
      if (needed && kind !== needed) {
        throw new AppError('invalid_request', `artifact ${id} is of kind "${kind}"; ${operation.kind} needs kind "${needed}"`);
      }
    }
  }

  /** Refuses (400) an operation whose artifacts are missing or of the wrong kind; rollouts check before they start. */
  checkOperation(operation: TaskOperation): Promise<void> {
    return this.#checkArtifacts(operation);
  }

  /** Queues one task for one device and starts delivering it; resolves with the queued task. */
  async create(deviceId: string, operation: TaskOperation, options: CreateOptions, extra: { retryOf?: string; attempt?: number } = {}): Promise<Task> {
    const device = await this.#write.selectFrom('devices').select(['id', 'name', 'facts', 'vms', 'last_seen_at']).where('id', '=', deviceId).executeTakeFirst();
    if (!device) throw notFound('device', deviceId);
    await this.#checkArtifacts(operation);
    const vms = device.vms ? JSON.parse(device.vms) as Vm[] : undefined;
    if (!options.force) {
      checkAgainstLastReport(operation, {
        facts: device.facts ? JSON.parse(device.facts) as HostFacts : undefined, vms, at: device.last_seen_at,
      });
    }
    const names = { ...namesOf(operation, device.name, vms), ...(await this.#artifactLabel(operation)) };
    const rows = await this.#write.transaction().execute((tx) => this.#insert(tx, [newRow(deviceId, operation, options, new Date(), extra, names)]));
    this.#announce(rows);
    return toTask(rows[0]!);
  }

  /** One operation on many devices: every id must exist (else 404 naming the unknown ones). */
  async createBulk(request: BulkTaskRequest, createdBy: string): Promise<BulkTaskResponse> {
    const targets = [request.deviceIds, request.tag, request.groupId].filter((t) => t !== undefined).length;
    if (targets !== 1) throw new AppError('invalid_request', 'body: give exactly one of deviceIds, tag or groupId');
    await this.#checkArtifacts(request.operation);
    let deviceIds: string[];
    if (request.deviceIds) {
      const known = new Set<string>();
      for (let i = 0; i < request.deviceIds.length; i += 500) {
        const rows = await this.#write.selectFrom('devices').select('id').where('id', 'in', request.deviceIds.slice(i, i + 500)).execute();
        for (const r of rows) known.add(r.id);
      }
      const unknown = request.deviceIds.filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new AppError('not_found', `${unknown.length} unknown device(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
      }
      deviceIds = request.deviceIds;
    } else if (request.groupId !== undefined) {
      if (!this.#groupMembers) throw new AppError('invalid_request', 'groups are not available on this manager');
      deviceIds = await this.#groupMembers(request.groupId);
    } else {
      const rows = await this.#write.selectFrom('device_tags').select('device_id').where('tag', '=', request.tag!).orderBy('device_id').execute();
      deviceIds = rows.map((r) => r.device_id);
    }
    const now = new Date();
    const options = { createdBy, ...(request.timeoutSec ? { timeoutSec: request.timeoutSec } : {}) };
    const devices = await this.#deviceNames(deviceIds, request.operation);
    const artifact = await this.#artifactLabel(request.operation);
    const rows = deviceIds.map((id) => newRow(id, request.operation, options, now, {}, { ...devices.get(id), ...artifact }));
    this.#announce(await this.#write.transaction().execute((tx) => this.#insert(tx, rows)));
    this.#logger.info({ count: rows.length, kind: request.operation.kind, by: createdBy }, 'bulk tasks created');
    return { count: rows.length, taskIds: rows.map((r) => r.id) };
  }

  /**
   * Tasks for whichever of `items` the caller's `claim` wins, created in the claim's own
   * transaction: `claim` gets the transaction and the task id each device would get, makes its
   * conditional updates (a compare-and-set on its own rows, e.g. a rollout's device entries)
   * and answers the devices it won. Only those tasks are inserted, in the same commit, so two
   * managers racing over the same devices never create a device's task twice, and a crash
   * leaves either both the claim and the task or neither. Devices that no longer exist are
   * left out and listed in `missing`. The artifacts are checked first (AppError if gone).
   */
  async createClaimed(
    items: ReadonlyArray<{ deviceId: string; attempt?: number; retryOf?: string }>,
    operation: TaskOperation,
    options: CreateOptions,
    claim: (tx: Db, taskIds: ReadonlyMap<string, string>) => Promise<ReadonlySet<string>>,
  ): Promise<{ tasks: Task[]; missing: string[] }> {
    await this.#checkArtifacts(operation);
    const existing = new Set<string>();
    const ids = items.map((i) => i.deviceId);
    for (let i = 0; i < ids.length; i += 500) {
      for (const r of await this.#write.selectFrom('devices').select('id').where('id', 'in', ids.slice(i, i + 500)).execute()) existing.add(r.id);
    }
    const now = new Date();
    const devices = await this.#deviceNames(ids.filter((id) => existing.has(id)), operation);
    const artifact = await this.#artifactLabel(operation);
    const rows = items.filter((i) => existing.has(i.deviceId)).map((i) => newRow(i.deviceId, operation, options, now, {
      ...(i.retryOf !== undefined ? { retryOf: i.retryOf } : {}), ...(i.attempt !== undefined ? { attempt: i.attempt } : {}),
    }, { ...devices.get(i.deviceId), ...artifact }));
    const inserted = await this.#write.transaction().execute(async (tx) => {
      const won = await claim(tx, new Map(rows.map((r) => [r.device_id, r.id])));
      return this.#insert(tx, rows.filter((r) => won.has(r.device_id)));
    });
    this.#announce(inserted);
    return { tasks: inserted.map(toTask), missing: ids.filter((id) => !existing.has(id)) };
  }

  /**
   * Inserts new tasks in `tx`, those the outbox can send at once already marked sent
   * (TaskOutbox.markNewSent); returns the rows as inserted.
   */
  async #insert(tx: Db, rows: readonly TaskRow[]): Promise<TaskRow[]> {
    const stored = await this.#outbox.markNewSent(tx, rows);
    // 27 columns a row; SQLite allows 32,766 bound parameters in one statement.
    for (let i = 0; i < stored.length; i += 500) await tx.insertInto('tasks').values(stored.slice(i, i + 500)).execute();
    return stored;
  }

  /** After the commit: each new task's live event, then its delivery. */
  #announce(rows: readonly TaskRow[]): void {
    for (const row of rows) this.#events.emit({ type: 'task', task: toTask(row) });
    void this.#outbox.deliverNew(rows);
  }

  async get(id: string): Promise<Task> {
    const row = await this.#read.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('task', id);
    return toTask(row);
  }

  /** Newest first. */
  async list(query: TaskQuery): Promise<PageOf<Task>> {
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    let q = this.#read.selectFrom('tasks');
    if (query.deviceId) q = q.where('device_id', '=', query.deviceId);
    if (query.device) {
      const ref = query.device;
      // By id, or every device that has this exact name now (names are not unique).
      q = q.where((eb) => eb.or([
        eb('device_id', '=', ref),
        eb('device_id', 'in', eb.selectFrom('devices').select('id').where('name', '=', ref)),
      ]));
    }
    if (query.vmId) q = q.where('vm_id', '=', query.vmId);
    if (query.state) q = q.where('state', '=', query.state);
    if (query.kind) q = q.where('kind', '=', query.kind);
    const [rows, count] = await Promise.all([
      q.selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute(),
      q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toTask), total: Number(count.n), limit, offset };
  }

  /**
   * A queued task is cancelled at once (the device never sees it). A task the device holds is
   * marked `cancelRequested` and the device is asked to stop it; its answer decides the final
   * state. A final task cannot be cancelled (409 task_final).
   */
  async cancel(id: string, by: string): Promise<Task> {
    const row = await this.#write.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('task', id);
    if (!ACTIVE.includes(row.state as never)) throw new AppError('task_final', `task ${id} is already ${row.state}`);
    const now = new Date().toISOString();
    const queued = await this.#write.updateTable('tasks')
      .set({ state: 'cancelled', cancel_requested: 1, finished_at: now, updated_at: now, error_code: 'cancelled', error_message: `cancelled by ${by} before it was sent to the device` })
      .where('id', '=', id).where('state', '=', 'queued').executeTakeFirst();
    if (queued.numUpdatedRows === 0n) {
      await this.#write.updateTable('tasks').set({ cancel_requested: 1, updated_at: now })
        .where('id', '=', id).where('state', 'in', ACTIVE).execute();
      await this.#outbox.sendCancel(row.device_id, id);
    }
    this.#logger.info({ task: id, by, wasQueued: queued.numUpdatedRows > 0n }, 'task cancel requested');
    const task = await this.#reload(id);
    this.#events.emit({ type: 'task', task });
    return task;
  }

  /** A new attempt of a failed, cancelled or timed-out task, linked to it. */
  async retry(id: string, by: string): Promise<Task> {
    const row = await this.#write.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('task', id);
    if (!RETRYABLE.has(row.state)) {
      throw new AppError('task_final', `task ${id} is ${row.state}; only failed, cancelled or timed-out tasks can be retried`);
    }
    return this.create(row.device_id, JSON.parse(row.operation) as TaskOperation, { createdBy: by }, { retryOf: id, attempt: row.attempt + 1 });
  }

  /** A decommissioned device will never answer: its unfinished tasks end as cancelled. */
  async cancelAllForDevice(deviceId: string, reason: string): Promise<number> {
    const now = new Date().toISOString();
    const active = await this.#write.selectFrom('tasks').select('id').where('device_id', '=', deviceId).where('state', 'in', ACTIVE).execute();
    if (active.length === 0) return 0;
    await this.#write.updateTable('tasks')
      .set({ state: 'cancelled', finished_at: now, updated_at: now, error_code: 'device_removed', error_message: reason })
      .where('device_id', '=', deviceId).where('state', 'in', ACTIVE).execute();
    for (const r of await loadTaskRows(this.#write, active.map((a) => a.id))) this.#events.emit({ type: 'task', task: toTask(r) });
    return active.length;
  }

  /** Each device's name (and the VM's, for an operation on one VM) for the new task rows. */
  async #deviceNames(ids: readonly string[], operation: TaskOperation): Promise<Map<string, TaskNames>> {
    const out = new Map<string, TaskNames>();
    const withVms = 'vmId' in operation;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = withVms
        ? await this.#write.selectFrom('devices').select(['id', 'name', 'vms']).where('id', 'in', chunk).execute()
        : (await this.#write.selectFrom('devices').select(['id', 'name']).where('id', 'in', chunk).execute()).map((r) => ({ ...r, vms: null }));
      for (const r of rows) out.set(r.id, namesOf(operation, r.name, r.vms ? JSON.parse(r.vms) as Vm[] : undefined));
    }
    return out;
  }

  /** The name and version of the artifact an operation names, if any (already checked to exist). */
  async #artifactLabel(operation: TaskOperation): Promise<TaskNames> {
    const [id] = artifactIdsOf(operation);
    if (id === undefined) return {};
    const row = await this.#write.selectFrom('artifacts').select(['name', 'version']).where('id', '=', id).executeTakeFirst();
    return row ? { artifactName: row.name, artifactVersion: row.version } : {};
  }

  async #reload(id: string): Promise<Task> {
    const row = await this.#write.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return toTask(row);
  }
}

/** The names written into a task row (docs/tasks.md#names). */
interface TaskNames {
  deviceName?: string;
  vmName?: string;
  artifactName?: string;
  artifactVersion?: string;
}

/** The device's name and the VM's: the one the operation acts on (from the last inventory), or the one it creates. */
function namesOf(operation: TaskOperation, deviceName: string, vms: readonly Vm[] | undefined): TaskNames {
  const vmName = operation.kind === 'vm.create' ? operation.spec.name
    : operation.kind === 'vm.deploy' ? operation.name
      : 'vmId' in operation ? storableText(vms?.find((v) => v.id === operation.vmId)?.name) : undefined;
  return { deviceName, ...(vmName !== undefined ? { vmName } : {}) };
}

function newRow(
  deviceId: string, operation: TaskOperation, options: CreateOptions, now: Date, extra: { retryOf?: string; attempt?: number } = {}, names: TaskNames = {},
): TaskRow {
  const at = now.toISOString();
  const timeoutSec = options.timeoutSec ?? TASK_TIMEOUT_DEFAULT_SEC;
  return {
    id: newTaskId(now.getTime()),
    device_id: deviceId,
    kind: operation.kind,
    operation: JSON.stringify(operation),
    vm_id: 'vmId' in operation ? operation.vmId : null,
    state: 'queued',
    progress_pct: 0,
    progress_message: null,
    cancel_requested: 0,
    error_code: null,
    error_message: null,
    result_vm: null,
    late_result: null,
    retry_of: extra.retryOf ?? null,
    attempt: extra.attempt ?? 1,
    created_by: options.createdBy,
    created_at: at,
    sent_at: null,
    sent_by: null,
    started_at: null,
    finished_at: null,
    deadline_at: new Date(now.getTime() + timeoutSec * 1000).toISOString(),
    updated_at: at,
    device_name: names.deviceName ?? null,
    vm_name: names.vmName ?? null,
    artifact_name: names.artifactName ?? null,
    artifact_version: names.artifactVersion ?? null,
  };
}
