import type { Service } from '../../lifecycle.js';
import type { Rollout, RolloutCounts, RolloutPolicy, TaskOperation, TaskState } from '@pallas/protocol';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import { AppError } from '../../errors.js';
import type { Db, Store } from '../../store/store.js';
import type { AuditService } from '../audit/audit-service.js';
import type { GroupsService } from '../groups/groups-service.js';
import type { EventBus } from '../live/event-bus.js';
import type { TasksService } from '../tasks/tasks-service.js';
import { needed, thresholdTripped } from './rollout-policy.js';
import { ACTIVE_ROLLOUT, IN_PROGRESS, OPEN_DEVICE_STATES, countsOf, loadRollout, type RolloutRow, type StoredTarget } from './rollout-view.js';

/** The shortest interval between two progress events of one rollout. */
const EMIT_MS = 200;

const FINAL_TASK: readonly TaskState[] = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** Operations whose success needs the device back and healthy on the new version, not only the task's result. */
const VERIFIED = new Set<TaskOperation['kind']>(['agent.update', 'device.patch']);

export interface RolloutEngineDeps {
  store: Store;
  tasks: TasksService;
  groups: GroupsService;
  events: EventBus;
  audit: AuditService;
  logger: Logger;
  /** The version of an artifact (agent updates are verified against it). */
  artifactVersion: (id: string) => Promise<string | null>;
  /** Periodic tick. Default 1000 ms. */
  intervalMs?: number;
}

/**
 * Advances every open rollout: collects task results, verifies updated devices, trips error
 * thresholds, dispatches pending devices of started waves, opens the next wave once the gate
 * is met (and the soak time passed), and ends rollouts.
 *
 * Safe when several managers tick at once (the cluster lead may also put `tick()` under a
 * lease): the engine keeps no state between ticks that the database does not hold, and every
 * transition is a conditional UPDATE on the state it leaves (compare-and-set), acted upon only
 * by the tick whose update changed a row. A device's task is inserted in the transaction that
 * claims its entry (TasksService.createClaimed), so a device never gets it twice.
 */
export class RolloutEngine implements Service {
  readonly name = 'rollout engine';
  readonly #db: Db;
  readonly #deps: RolloutEngineDeps;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastTickMs = 0;
  /**
   * Whether the last tick found an open rollout. Without one, a task's end cannot move any
   * rollout, and the once-a-second tick finds one started on another manager: a fan-out's
   * thousands of results then cost no query each (in a cluster, a round trip each).
   */
  #anyOpen = true;
  #unsubscribe: (() => void) | undefined;
  readonly #emitTimers = new Map<string, NodeJS.Timeout>();
  readonly #lastEmit = new Map<string, number>();

  constructor(deps: RolloutEngineDeps) {
    this.#db = deps.store.write;
    this.#deps = deps;
    this.#intervalMs = deps.intervalMs ?? 1000;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => this.nudge(), this.#intervalMs);
    this.#timer.unref();
    // A task that ends or a device that comes online usually moves a rollout: look soon. "Soon"
    // is as long as the last tick took (at most 50 ms): a wave's last result is acted on at once
    // when ticks are cheap (each wave waits for it), and when they are not, the engine takes at
    // most about half of a core while results pour in.
    this.#unsubscribe = this.#deps.events.subscribe(({ event }) => {
      if (!this.#anyOpen) return;
      if ((event.type === 'task' && FINAL_TASK.includes(event.task.state)) || (event.type === 'device' && event.device.presence === 'online')) {
        this.nudge(Math.min(50, this.#lastTickMs));
      }
      // While no rollout is open, task events are of no use here: another manager's need not
      // even be read (the relay skips what no listener wants).
    }, (type) => type === 'device' || (type === 'task' && this.#anyOpen));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#unsubscribe?.();
    this.#timer = undefined;
    await this.#running;
    for (const t of this.#emitTimers.values()) clearTimeout(t);
    this.#emitTimers.clear();
  }

  /** Asks for a tick soon (coalesced); ticks in this process never overlap. */
  nudge(delayMs = 0): void {
    if (this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      if (this.#running) {
        this.#again = true;
        return;
      }
      const started = performance.now();
      this.#running = this.tick().catch((err: unknown) => this.#deps.logger.error({ err }, 'rollout tick failed')).finally(() => {
        this.#lastTickMs = performance.now() - started;
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.nudge();
        }
      });
    }, delayMs);
    this.#soon.unref();
  }

  /** One pass over every open rollout. Idempotent; may run concurrently on several managers. */
  async tick(now = new Date()): Promise<void> {
    const rows = await this.#db.selectFrom('rollouts').selectAll()
      .where((eb) => eb.or([eb('state', 'in', ACTIVE_ROLLOUT), eb('finished_at', 'is', null)])).orderBy('id').execute();
    this.#anyOpen = rows.length > 0;
    for (const row of rows) {
      try {
        if (await this.#advance(row, now)) this.#emitSoon(row.id);
      } catch (err) {
        this.#deps.logger.error({ err, rollout: row.id }, 'rollout step failed');
      }
    }
  }

  // --- transitions an operator asks for (also used by the engine itself)

  async pause(id: string, reason: string): Promise<boolean> {
    return this.#setState(id, ['running'], 'paused', reason);
  }

  /** Paused → running; the error threshold counts from here, and a wave that missed its gate is let through. */
  async resume(id: string): Promise<boolean> {
    const row = await this.#row(id);
    const counts = (await countsOf(this.#db, id, row.wave_count))[0]!;
    const res = await this.#db.updateTable('rollouts').set({
      state: 'running', pause_reason: null, updated_at: new Date().toISOString(),
      base_failed: counts.failed, base_finished: counts.failed + counts.succeeded,
    }).where('id', '=', id).where('state', '=', 'paused').executeTakeFirst();
    if (res.numUpdatedRows === 0n) return false;
    if (row.pause_reason === 'success_gate') {
      await this.#db.updateTable('rollout_waves').set({ gate_met_at: new Date().toISOString() })
        .where('rollout_id', '=', id).where('wave', '=', row.current_wave).where('gate_met_at', 'is', null).execute();
    }
    this.nudge();
    return true;
  }

  /** Running or paused → aborted: devices without a task are skipped, queued tasks cancelled; tasks on devices finish. */
  async abort(id: string, reason: string, by: string): Promise<boolean> {
    if (!(await this.#setState(id, ACTIVE_ROLLOUT, 'aborted', reason))) return false;
    await this.#skipPending(id, 'aborted', `the rollout was aborted (${reason})`);
    const queued = await this.#db.selectFrom('rollout_devices').innerJoin('tasks', 'tasks.id', 'rollout_devices.task_id')
      .select('tasks.id').where('rollout_devices.rollout_id', '=', id).where('rollout_devices.state', '=', 'active').where('tasks.state', '=', 'queued').execute();
    for (const t of queued) {
      await this.#deps.tasks.cancel(t.id, by).catch((err: unknown) => {
        // Sent in the meantime (the device has it now, and will finish it) or already final.
        if (!(err instanceof AppError && err.code === 'task_final')) throw err;
      });
    }
    this.nudge();
    return true;
  }

  async #setState(id: string, from: readonly string[], to: string, reason: string | null): Promise<boolean> {
    const now = new Date().toISOString();
    const res = await this.#db.updateTable('rollouts').set({ state: to, pause_reason: reason, updated_at: now })
      .where('id', '=', id).where('state', 'in', from).executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }

  async #row(id: string): Promise<RolloutRow> {
    return this.#db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }

  /**
   * Progress events at most every EMIT_MS per rollout, the last one always sent: a wave of
   * thousands of devices ends in hundreds of ticks, and each event carries the whole rollout.
   */
  #emitSoon(id: string): void {
    if (this.#emitTimers.has(id)) return;
    const wait = Math.max(0, (this.#lastEmit.get(id) ?? 0) + EMIT_MS - Date.now());
    const timer = setTimeout(() => {
      this.#emitTimers.delete(id);
      if (this.#lastEmit.size > 10_000) this.#lastEmit.clear();
      this.#lastEmit.set(id, Date.now());
      this.#emit(id).catch((err: unknown) => this.#deps.logger.error({ err, rollout: id }, 'rollout event failed'));
    }, wait);
    timer.unref();
    this.#emitTimers.set(id, timer);
  }

  async #emit(id: string): Promise<Rollout> {
    const rollout = await loadRollout(this.#db, await this.#row(id));
    this.#deps.events.emit({ type: 'rollout', rollout });
    return rollout;
  }

  // --- one rollout's step; true when something changed

  async #advance(row: RolloutRow, now: Date): Promise<boolean> {
    const policy = JSON.parse(row.policy) as RolloutPolicy;
    const operation = JSON.parse(row.operation) as TaskOperation;
    let changed = await this.#collect(row, policy, operation, now);
    changed = (await this.#verify(row, operation, now)) || changed;
    if (row.state === 'running') {
      const fresh = await this.#row(row.id);
      if (fresh.state === 'running') changed = (await this.#drive(fresh, policy, operation, now)) || changed;
    } else if (row.state === 'paused' && now.toISOString() >= row.deadline_at) {
      // A rollout left paused past its deadline ends like a running one: what never started is skipped.
      if (await this.#setState(row.id, ['paused'], 'completed', 'deadline')) {
        await this.#skipPending(row.id, 'deadline', 'the rollout reached its deadline (paused) before this device could get the operation');
        changed = true;
      }
    }
    if (!ACTIVE_ROLLOUT.includes((await this.#row(row.id)).state as never)) changed = (await this.#finishIfDrained(row.id, now)) || changed;
    return changed;
  }

  /** Active entries whose task is final: succeeded (or verifying), failed, retried, or skipped (cancelled by an abort). */
  async #collect(row: RolloutRow, policy: RolloutPolicy, operation: TaskOperation, now: Date): Promise<boolean> {
    const done = await this.#db.selectFrom('rollout_devices').innerJoin('tasks', 'tasks.id', 'rollout_devices.task_id')
      .select(['rollout_devices.device_id', 'rollout_devices.task_id', 'rollout_devices.attempts', 'tasks.state as task_state', 'tasks.error_code', 'tasks.error_message'])
      .where('rollout_devices.rollout_id', '=', row.id).where('rollout_devices.state', '=', 'active').where('tasks.state', 'in', FINAL_TASK).execute();
    if (done.length === 0) return false;
    const at = now.toISOString();
    const retry: typeof done = [];
    let changed = false;
    // The common case in one statement per 500: plain successes. Still a compare-and-set: only
    // entries still active on that very task move.
    const plain = VERIFIED.has(operation.kind) ? [] : done.filter((d) => d.task_state === 'succeeded').map((d) => d.task_id!);
    for (let i = 0; i < plain.length; i += 500) {
      const res = await this.#db.updateTable('rollout_devices').set({ state: 'succeeded', finished_at: at, updated_at: at, error_code: null, error_message: null })
        .where('rollout_id', '=', row.id).where('state', '=', 'active').where('task_id', 'in', plain.slice(i, i + 500)).executeTakeFirst();
      changed = changed || res.numUpdatedRows > 0n;
    }
    for (const d of done) {
      if (d.task_state === 'succeeded' && !VERIFIED.has(operation.kind)) continue;
      const cas = (set: Record<string, unknown>) => this.#db.updateTable('rollout_devices').set({ updated_at: at, ...set })
        .where('rollout_id', '=', row.id).where('device_id', '=', d.device_id).where('state', '=', 'active').where('task_id', '=', d.task_id).executeTakeFirst();
      let res;
      if (d.task_state === 'succeeded') {
        res = VERIFIED.has(operation.kind)
          ? await cas({ state: 'verifying', verify_until: new Date(now.getTime() + policy.verifySec * 1000).toISOString() })
          : await cas({ state: 'succeeded', finished_at: at, error_code: null, error_message: null });
      } else if (row.state === 'aborted' && d.task_state === 'cancelled') {
        res = await cas({ state: 'skipped', finished_at: at, error_code: 'aborted', error_message: 'cancelled before it was sent: the rollout was aborted' });
      } else if (d.attempts <= policy.retries && row.state !== 'aborted' && row.state !== 'completed') {
        // Retried while the rollout runs; a paused rollout keeps the device in progress until resumed.
        if (row.state === 'running') retry.push(d);
        continue;
      } else {
        res = await cas({ state: 'failed', finished_at: at, error_code: d.error_code ?? d.task_state, error_message: d.error_message ?? `the task ended ${d.task_state}` });
      }
      changed = changed || res.numUpdatedRows > 0n;
    }
    if (retry.length > 0) {
      const byDevice = new Map(retry.map((d) => [d.device_id, d]));
      const { tasks } = await this.#deps.tasks.createClaimed(
        retry.map((d) => ({ deviceId: d.device_id, attempt: d.attempts + 1, retryOf: d.task_id! })),
        operation, { createdBy: `rollout:${row.id}`, timeoutSec: policy.deviceTimeoutSec },
        (tx, taskIds) => this.#claim(tx, row.id, taskIds, (deviceId) => ({ state: 'active', task_id: byDevice.get(deviceId)!.task_id })),
      );
      changed = changed || tasks.length > 0;
    }
    return changed;
  }

  /**
   * Claims entries for their new tasks: one compare-and-set per device on the state (and task)
   * it is leaving. Answers the devices whose update changed a row.
   */
  async #claim(tx: Db, rolloutId: string, taskIds: ReadonlyMap<string, string>, from: (deviceId: string) => { state: string; task_id: string | null }): Promise<Set<string>> {
    const won = new Set<string>();
    const at = new Date().toISOString();
    for (const [deviceId, taskId] of taskIds) {
      const prev = from(deviceId);
      let q = tx.updateTable('rollout_devices')
        .set((eb) => ({ state: 'active', task_id: taskId, attempts: eb('attempts', '+', 1), updated_at: at, verify_until: null }))
        .where('rollout_id', '=', rolloutId).where('device_id', '=', deviceId).where('state', '=', prev.state);
      q = prev.task_id === null ? q.where('task_id', 'is', null) : q.where('task_id', '=', prev.task_id);
      if ((await q.executeTakeFirst()).numUpdatedRows > 0n) won.add(deviceId);
    }
    return won;
  }

  /**
   * Pending entries (no task yet) claimed for their new tasks, 500 per statement: a wave of
   * thousands of devices is dispatched in a few statements, not one per device. The same
   * compare-and-set as `#claim` (only entries still pending without a task move), and the
   * rows it changed are the devices this tick won.
   */
  async #claimPending(tx: Db, rolloutId: string, taskIds: ReadonlyMap<string, string>): Promise<Set<string>> {
    const won = new Set<string>();
    const at = new Date().toISOString();
    const entries = [...taskIds];
    for (let i = 0; i < entries.length; i += 500) {
      const chunk = entries.slice(i, i + 500);
      const taskOf = sql<string>`case device_id ${sql.join(chunk.map(([deviceId, taskId]) => sql`when ${deviceId} then ${taskId}`), sql` `)} end`;
      const rows = await tx.updateTable('rollout_devices')
        .set((eb) => ({ state: 'active', task_id: taskOf, attempts: eb('attempts', '+', 1), updated_at: at, verify_until: null }))
        .where('rollout_id', '=', rolloutId).where('state', '=', 'pending').where('task_id', 'is', null)
        .where('device_id', 'in', chunk.map(([deviceId]) => deviceId))
        .returning('device_id').execute();
      for (const r of rows) won.add(r.device_id);
    }
    return won;
  }

  /** Verifying entries: an agent update counts once the device reports the artifact's version, a patch once it reports again after it. */
  async #verify(row: RolloutRow, operation: TaskOperation, now: Date): Promise<boolean> {
    if (!VERIFIED.has(operation.kind)) return false;
    const entries = await this.#db.selectFrom('rollout_devices')
      .leftJoin('devices', 'devices.id', 'rollout_devices.device_id')
      .leftJoin('tasks', 'tasks.id', 'rollout_devices.task_id')
      .select(['rollout_devices.device_id', 'rollout_devices.task_id', 'rollout_devices.verify_until', 'devices.presence', 'devices.agent_version', 'devices.last_seen_at', 'tasks.finished_at as task_finished_at'])
      .where('rollout_devices.rollout_id', '=', row.id).where('rollout_devices.state', '=', 'verifying').execute();
    if (entries.length === 0) return false;
    const wanted = operation.kind === 'agent.update' ? await this.#deps.artifactVersion(operation.artifactId) : null;
    const at = now.toISOString();
    let changed = false;
    for (const e of entries) {
      const back = e.presence === 'online' && e.last_seen_at !== null && e.task_finished_at !== null && e.last_seen_at > e.task_finished_at;
      const healthy = back && (operation.kind !== 'agent.update' || wanted === null || e.agent_version === wanted);
      let set: Record<string, unknown> | undefined;
      if (healthy) set = { state: 'succeeded', finished_at: at };
      else if (e.verify_until !== null && e.verify_until < at) {
        set = {
          state: 'failed', finished_at: at, error_code: 'not_healthy',
          error_message: operation.kind === 'agent.update'
            ? `the device did not report agent version ${wanted ?? '?'} online within the verification time (it reports ${e.agent_version ?? 'nothing'})`
            : 'the device did not report back online after the patch within the verification time',
        };
      }
      if (!set) continue;
      const res = await this.#db.updateTable('rollout_devices').set({ updated_at: at, ...set })
        .where('rollout_id', '=', row.id).where('device_id', '=', e.device_id).where('state', '=', 'verifying').where('task_id', '=', e.task_id).executeTakeFirst();
      changed = changed || res.numUpdatedRows > 0n;
    }
    return changed;
  }

  /** A running rollout: threshold, deadline, new members, dispatch, gate and next wave, completion. */
  async #drive(row: RolloutRow, policy: RolloutPolicy, operation: TaskOperation, now: Date): Promise<boolean> {
    const at = now.toISOString();
    let counts = await countsOf(this.#db, row.id, row.wave_count);
    const total = counts[0]!;
    const failedSince = total.failed - row.base_failed;
    const finishedSince = total.failed + total.succeeded - row.base_finished;
    if (thresholdTripped(policy, failedSince, finishedSince)) {
      const action = policy.errorThreshold.action;
      const reason = 'error_threshold';
      const won = action === 'abort' ? await this.abort(row.id, reason, 'rollout-engine') : await this.pause(row.id, reason);
      if (won) {
        this.#deps.logger.warn({ rollout: row.id, failed: failedSince, finished: finishedSince, action }, 'rollout error threshold tripped');
        await this.#deps.audit.record({
          actor: { kind: 'system', name: 'rollout-engine' }, action: 'rollout.threshold-tripped', target: { kind: 'rollout', id: row.id, name: row.name }, outcome: 'ok',
          detail: { action, failed: failedSince, finished: finishedSince, threshold: policy.errorThreshold, wave: row.current_wave, why: `${failedSince} of ${finishedSince} finished devices failed since the rollout started or was last resumed` },
        });
      }
      return won;
    }
    if (at >= row.deadline_at) {
      await this.#skipPending(row.id, 'deadline', 'the rollout reached its deadline before this device could get the operation');
      return this.#setState(row.id, ['running'], 'completed', 'deadline');
    }
    let changed = false;
    if (row.membership === 'dynamic' && (await this.#addNewMembers(row, operation))) {
      changed = true;
      counts = await countsOf(this.#db, row.id, row.wave_count);
    }
    const dispatched = await this.#dispatch(row, policy, operation, counts[0]!);
    // Devices just dispatched are in progress: the gate cannot be met in this tick.
    if (dispatched) return true;
    const gate = await this.#gate(row, policy, now, counts);
    if (gate !== 'opened') return gate || changed;
    // The next wave was opened by this tick: its devices get their tasks in this tick too, not
    // one tick later (each wave would otherwise cost a tick's scheduling on top of its slowest device).
    const opened = await this.#row(row.id);
    if (opened.state === 'running') await this.#dispatch(opened, policy, operation, (await countsOf(this.#db, row.id, row.wave_count))[0]!);
    return true;
  }

  /** Devices that joined the group or tag since the start join the wave being run (or the last one). */
  async #addNewMembers(row: RolloutRow, operation: TaskOperation): Promise<boolean> {
    const members = await resolveTarget(this.#db, this.#deps.groups, JSON.parse(row.target) as StoredTarget);
    const known = new Set((await this.#db.selectFrom('rollout_devices').select('device_id').where('rollout_id', '=', row.id).execute()).map((r) => r.device_id));
    const fresh = members.filter((id) => !known.has(id));
    if (fresh.length === 0) return false;
    // Under the membership lock, as a create: a device never joins two open rollouts of one operation.
    return this.#db.transaction().execute(async (tx) => {
      await lockMembership(tx, this.#deps.store.dialect);
      const busy = await busyDevices(tx, operation.kind, fresh, row.id);
      const joining = fresh.filter((id) => !busy.has(id));
      if (joining.length === 0) return false;
      const at = new Date().toISOString();
      const wave = Math.max(1, Math.min(row.current_wave, row.wave_count));
      for (let i = 0; i < joining.length; i += 500) {
        await tx.insertInto('rollout_devices')
          .values(joining.slice(i, i + 500).map((device_id) => ({ rollout_id: row.id, device_id, wave, state: 'pending', task_id: null, attempts: 0, error_code: null, error_message: null, verify_until: null, updated_at: at, finished_at: null })))
          // Another manager's tick may have added the same devices: the primary key keeps one.
          .onConflict((oc) => oc.columns(['rollout_id', 'device_id']).doNothing()).execute();
      }
      return true;
    });
  }

  /** Pending devices of started waves that are online, up to `maxInProgress` in progress. */
  async #dispatch(row: RolloutRow, policy: RolloutPolicy, operation: TaskOperation, counts: RolloutCounts): Promise<boolean> {
    const room = policy.maxInProgress - counts.active - counts.verifying;
    if (room <= 0 || counts.pending === 0) return false;
    // Offline devices stay pending (not failed) until they come back within the deadline.
    const candidates = await this.#db.selectFrom('rollout_devices').innerJoin('devices', 'devices.id', 'rollout_devices.device_id')
      .select('rollout_devices.device_id')
      .where('rollout_devices.rollout_id', '=', row.id).where('rollout_devices.state', '=', 'pending')
      .where('rollout_devices.wave', '<=', row.current_wave).where('devices.presence', '=', 'online')
      .orderBy('rollout_devices.wave').orderBy('devices.name').orderBy('rollout_devices.device_id').limit(room).execute();
    let changed = await this.#skipRemoved(row.id);
    if (candidates.length === 0) return changed;
    try {
      const { tasks } = await this.#deps.tasks.createClaimed(
        candidates.map((c) => ({ deviceId: c.device_id })), operation,
        { createdBy: `rollout:${row.id}`, timeoutSec: policy.deviceTimeoutSec },
        (tx, taskIds) => this.#claimPending(tx, row.id, taskIds),
      );
      changed = changed || tasks.length > 0;
    } catch (err) {
      // The artifact was deleted under the rollout: nothing more can be sent; stop and say why.
      if (err instanceof AppError && err.code === 'invalid_request') {
        this.#deps.logger.warn({ rollout: row.id, err: err.message }, 'rollout paused: its operation can no longer be created');
        return (await this.pause(row.id, `invalid_operation: ${err.message}`.slice(0, 500))) || changed;
      }
      throw err;
    }
    return changed;
  }

  /** Entries of devices that were decommissioned are skipped (the device will never answer). */
  async #skipRemoved(rolloutId: string): Promise<boolean> {
    const res = await this.#db.updateTable('rollout_devices')
      .set({ state: 'skipped', error_code: 'device_removed', error_message: 'the device was decommissioned', finished_at: new Date().toISOString(), updated_at: new Date().toISOString() })
      .where('rollout_id', '=', rolloutId).where('state', '=', 'pending')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('devices').select('devices.id').whereRef('devices.id', '=', 'rollout_devices.device_id'))))
      .executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }

  /** The current wave's success gate; then the soak time; then the next wave (`'opened'`), or the end. */
  async #gate(row: RolloutRow, policy: RolloutPolicy, now: Date, counts: RolloutCounts[]): Promise<boolean | 'opened'> {
    const at = now.toISOString();
    const w = row.current_wave;
    const wave = await this.#db.selectFrom('rollout_waves').selectAll().where('rollout_id', '=', row.id).where('wave', '=', w).executeTakeFirst();
    if (!wave) return false;
    const c = counts[w]!;
    const size = c.total - c.skipped;
    let changed = false;
    let gateMetAt = wave.gate_met_at;
    if (gateMetAt === null) {
      const inProgress = c.active + c.verifying;
      if (c.succeeded >= needed(policy, size) && inProgress === 0) {
        const res = await this.#db.updateTable('rollout_waves').set({ gate_met_at: at })
          .where('rollout_id', '=', row.id).where('wave', '=', w).where('gate_met_at', 'is', null).executeTakeFirst();
        changed = res.numUpdatedRows > 0n;
        gateMetAt = at;
      } else if (inProgress === 0 && c.pending === 0) {
        // Every device of the wave is final and too few succeeded: the gate cannot be met any more.
        const won = await this.pause(row.id, 'success_gate');
        if (won) {
          await this.#deps.audit.record({
            actor: { kind: 'system', name: 'rollout-engine' }, action: 'rollout.gate-missed', target: { kind: 'rollout', id: row.id, name: row.name }, outcome: 'ok',
            detail: { wave: w, succeeded: c.succeeded, needed: needed(policy, size), why: `wave ${w}: ${c.succeeded} of ${size} devices succeeded, ${needed(policy, size)} needed` },
          });
        }
        return won || changed;
      } else {
        return changed;
      }
    }
    if (now.getTime() < Date.parse(gateMetAt) + policy.soakSec * 1000) return changed;
    if (w < row.wave_count) {
      const res = await this.#db.updateTable('rollouts').set({ current_wave: w + 1, updated_at: at })
        .where('id', '=', row.id).where('current_wave', '=', w).where('state', '=', 'running').executeTakeFirst();
      if (res.numUpdatedRows > 0n) {
        await this.#db.updateTable('rollout_waves').set({ started_at: at }).where('rollout_id', '=', row.id).where('wave', '=', w + 1).where('started_at', 'is', null).execute();
        return 'opened';
      }
      return changed;
    }
    // The last wave passed its gate. A fixed rollout ends once no device is open; a dynamic one
    // keeps taking new members until its deadline (or an abort).
    if (row.membership === 'fixed') {
      const total = (await countsOf(this.#db, row.id, row.wave_count))[0]!;
      if (total.pending + total.active + total.verifying === 0) return (await this.#setState(row.id, ['running'], 'completed', null)) || changed;
    }
    return changed;
  }

  async #skipPending(rolloutId: string, code: string, message: string): Promise<void> {
    const at = new Date().toISOString();
    await this.#db.updateTable('rollout_devices').set({ state: 'skipped', error_code: code, error_message: message, finished_at: at, updated_at: at })
      .where('rollout_id', '=', rolloutId).where('state', '=', 'pending').execute();
  }

  /** An ended rollout is finished once nothing of it is in progress. */
  async #finishIfDrained(rolloutId: string, now: Date): Promise<boolean> {
    const open = await this.#db.selectFrom('rollout_devices').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId).where('state', 'in', IN_PROGRESS).executeTakeFirstOrThrow();
    if (Number(open.n) > 0) return false;
    const res = await this.#db.updateTable('rollouts').set({ finished_at: now.toISOString(), updated_at: now.toISOString() })
      .where('id', '=', rolloutId).where('state', 'not in', ACTIVE_ROLLOUT).where('finished_at', 'is', null).executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }
}

/** The target's devices now, in the order waves take them: a list as given, a group or tag by name. */
export async function resolveTarget(db: Db, groups: GroupsService, target: StoredTarget): Promise<string[]> {
  if (target.deviceIds) return target.deviceIds;
  if (target.groupId) return groups.memberIds(target.groupId, db);
  const rows = await db.selectFrom('devices').select('id')
    .where('id', 'in', (eb) => eb.selectFrom('device_tags').select('device_id').where('tag', '=', target.tag!))
    .orderBy('name').orderBy('id').execute();
  return rows.map((r) => r.id);
}

/**
 * Serialises what puts devices into open rollouts (a create, a dynamic rollout's new members)
 * for the rest of the transaction `tx`, so that "no device in two open rollouts of the same
 * operation" is checked and written atomically. SQLite needs nothing: its one writer connection
 * runs one transaction at a time (and a second process's write on a stale snapshot fails with
 * SQLITE_BUSY rather than commit). PostgreSQL: a transaction-scoped advisory lock, released at
 * commit or rollback; creates are rare, so one lock for all is enough.
 */
export async function lockMembership(tx: Db, dialect: Store['dialect']): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(MEMBERSHIP_LOCK)})`.execute(tx);
}
/** The advisory lock's key: "pall" as a number, arbitrary but fixed. */
const MEMBERSHIP_LOCK = 0x70616c6c;

/** Of `deviceIds`, those still open in another running or paused rollout of the same operation. */
export async function busyDevices(db: Db, kind: string, deviceIds: readonly string[], except?: string): Promise<Set<string>> {
  const busy = new Set<string>();
  for (let i = 0; i < deviceIds.length; i += 500) {
    let q = db.selectFrom('rollout_devices').innerJoin('rollouts', 'rollouts.id', 'rollout_devices.rollout_id')
      .select('rollout_devices.device_id')
      .where('rollouts.state', 'in', ACTIVE_ROLLOUT).where('rollouts.operation_kind', '=', kind)
      .where('rollout_devices.state', 'in', OPEN_DEVICE_STATES).where('rollout_devices.device_id', 'in', deviceIds.slice(i, i + 500));
    if (except) q = q.where('rollouts.id', '!=', except);
    for (const r of await q.execute()) busy.add(r.device_id);
  }
  return busy;
}
