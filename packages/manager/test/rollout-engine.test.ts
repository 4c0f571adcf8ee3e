/**
 * The rollout engine when two managers tick the same rollout at once (what a cluster without a
 * lease does): on PostgreSQL two stores with their own connection pools — real concurrent
 * transactions — and on SQLite two engines on the one connection, interleaving at every await.
 * Whatever the interleaving, each device gets one task per attempt, each wave opens once, and a
 * threshold trip is acted on and audited once. The task outbox is a fake (nothing is delivered
 * here; delivery is the task engine's, tested in tasks.test.ts and end to end).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { TaskOperation } from '@pallas/protocol';
import { AuditService } from '../src/services/audit/audit-service.js';
import { GroupsService } from '../src/services/groups/groups-service.js';
import { EventBus } from '../src/services/live/event-bus.js';
import { RolloutEngine } from '../src/services/rollouts/rollout-engine.js';
import { RolloutsService } from '../src/services/rollouts/rollouts-service.js';
import type { TaskOutbox } from '../src/services/tasks/task-outbox.js';
import { TasksService } from '../src/services/tasks/tasks-service.js';
import { openStore, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

const logger = pino({ level: 'silent' });
const fakeOutbox = { pump: async () => {}, sendCancel: async () => {}, markNewSent: async (_tx: unknown, rows: unknown[]) => [...rows], deliverNew: async () => {} } as unknown as TaskOutbox;
const power: TaskOperation = { kind: 'vm.power', vmId: 'vm-100', action: 'on' };

/** One manager's share: its own services and engine over `store`. */
function managerOn(store: Store) {
  const events = new EventBus();
  const groups = new GroupsService(store);
  const tasks = new TasksService({ store, outbox: fakeOutbox, events, logger });
  const audit = new AuditService({ store, logger });
  const engine = new RolloutEngine({ store, tasks, groups, events, audit, logger, artifactVersion: async () => null });
  return { engine, rollouts: new RolloutsService({ store, tasks, groups, engine, events }), tasks };
}

function engineSuite(makeTarget: () => Promise<StoreTarget>, separateConnections: boolean) {
  let target: StoreTarget;
  let one: Store;
  let two: Store;
  const deviceIds: string[] = [];

  before(async () => {
    target = await makeTarget();
    one = await openStore(target.url);
    await one.migrate();
    two = separateConnections ? await openStore(target.url) : one;
    const at = new Date().toISOString();
    for (let i = 0; i < 60; i++) {
      const id = randomUUID();
      deviceIds.push(id);
      await one.write.insertInto('devices').values({
        id, name: `dev-${String(i).padStart(2, '0')}`, secret_hash: 'x', presence: 'online', last_seen_at: at, enrolled_at: at, updated_at: at,
        enrollment_token_id: null, hypervisor_kind: 'sim', agent_version: '0.1.0', facts: null, vms: null, status_seq: 0, status: 'active',
        pending_secret_hash: null, flags: null, last_address: null,
      }).execute();
    }
  });
  after(async () => {
    if (two !== one) await two?.close();
    await one?.close();
    await target?.dispose();
  });

  /** Both managers tick `rounds` times, each round at the same moment. */
  const race = async (a: RolloutEngine, b: RolloutEngine, rounds = 4) => {
    for (let i = 0; i < rounds; i++) await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
  };
  const tasksPerDevice = async (createdBy: string) => {
    const rows = await one.write.selectFrom('tasks').select(['device_id', (eb) => eb.fn.countAll<number>().as('n')]).where('created_by', '=', createdBy).groupBy('device_id').execute();
    return new Map(rows.map((r) => [r.device_id, Number(r.n)]));
  };
  const finishAll = (createdBy: string, state: 'succeeded' | 'failed', devices?: string[]) => {
    let q = one.write.updateTable('tasks').set({ state, finished_at: new Date().toISOString(), error_code: state === 'failed' ? 'host_error' : null })
      .where('created_by', '=', createdBy).where('state', '=', 'queued');
    if (devices) q = q.where('device_id', 'in', devices);
    return q.execute();
  };

  it('gives every device one task and opens each wave once, however the ticks interleave', async () => {
    const a = managerOn(one);
    const b = managerOn(two);
    const r = await a.rollouts.create({ name: 'race', operation: power, deviceIds: deviceIds.slice(0, 40), waves: { sizes: [10, 30] }, maxInProgress: 1000 }, 'test');
    const by = `rollout:${r.id}`;
    await race(a.engine, b.engine);
    let counts = await tasksPerDevice(by);
    assert.equal(counts.size, 10, 'wave 1 only');
    assert.ok([...counts.values()].every((n) => n === 1), JSON.stringify([...counts]));
    await finishAll(by, 'succeeded');
    await race(a.engine, b.engine);
    counts = await tasksPerDevice(by);
    assert.equal(counts.size, 40);
    assert.ok([...counts.values()].every((n) => n === 1), JSON.stringify([...counts]));
    const wave2 = await one.write.selectFrom('rollout_waves').selectAll().where('rollout_id', '=', r.id).where('wave', '=', 2).executeTakeFirstOrThrow();
    assert.ok(wave2.started_at !== null);
    await finishAll(by, 'succeeded');
    await race(a.engine, b.engine);
    const done = await a.rollouts.get(r.id, one.write);
    assert.equal(done.state, 'completed');
    assert.equal(done.counts.succeeded, 40);
    assert.ok(done.finishedAt !== null);
  });

  it('gives a dynamic rollout to devices that join its tag later, once, and keeps offline devices pending', async () => {
    const a = managerOn(one);
    const b = managerOn(two);
    const [first, second, late, away] = deviceIds.slice(0, 4) as [string, string, string, string];
    for (const d of [first, second, away]) await one.write.insertInto('device_tags').values({ device_id: d, tag: 'ring=dyn' }).execute();
    await one.write.updateTable('devices').set({ presence: 'offline' }).where('id', '=', away).execute();
    const r = await a.rollouts.create({ name: 'dyn', operation: { kind: 'vm.delete', vmId: 'vm-1' }, tag: 'ring=dyn', membership: 'dynamic', waves: { sizes: [3] } }, 'test');
    const by = `rollout:${r.id}`;
    await race(a.engine, b.engine);
    assert.deepEqual([...(await tasksPerDevice(by)).keys()].sort(), [first, second].sort());
    await finishAll(by, 'succeeded');
    await one.write.insertInto('device_tags').values({ device_id: late, tag: 'ring=dyn' }).execute();
    await race(a.engine, b.engine);
    const counts = await tasksPerDevice(by);
    assert.equal(counts.get(late), 1, 'the late member got it once');
    assert.equal(counts.get(away), undefined, 'the offline device has no task yet');
    const now = await a.rollouts.get(r.id, one.write);
    assert.equal(now.state, 'running', 'a dynamic rollout runs until its deadline');
    assert.deepEqual([now.counts.total, now.counts.pending, now.counts.failed], [4, 1, 0]);
    await a.rollouts.abort(r.id, 'test');
  });

  it('abort cancels the queued tasks, skips the devices without one, and lets sent ones finish', async () => {
    const a = managerOn(one);
    const b = managerOn(two);
    const devices = deviceIds.slice(4, 10);
    const r = await a.rollouts.create({ name: 'abort', operation: { kind: 'vm.update', vmId: 'vm-1', patch: { name: 'x' } }, deviceIds: devices, waves: { sizes: [4, 2] } }, 'test');
    const by = `rollout:${r.id}`;
    await race(a.engine, b.engine);
    // The fake outbox never sends: all four are queued. Mark one as sent to the device.
    const tasks = await one.write.selectFrom('tasks').select(['id', 'device_id']).where('created_by', '=', by).orderBy('id').execute();
    assert.equal(tasks.length, 4);
    await one.write.updateTable('tasks').set({ state: 'sent' }).where('id', '=', tasks[0]!.id).execute();
    await a.rollouts.abort(r.id, 'test');
    await race(a.engine, b.engine);
    const states = await one.write.selectFrom('tasks').select(['id', 'state']).where('created_by', '=', by).orderBy('id').execute();
    assert.deepEqual(states.map((t) => t.state), ['sent', 'cancelled', 'cancelled', 'cancelled']);
    let now = await a.rollouts.get(r.id, one.write);
    assert.deepEqual([now.state, now.counts.active, now.counts.skipped, now.finishedAt], ['aborted', 1, 5, null]);
    // The sent one finishes (and counts); then the rollout is finished.
    await one.write.updateTable('tasks').set({ state: 'succeeded', finished_at: new Date().toISOString() }).where('id', '=', tasks[0]!.id).execute();
    await race(a.engine, b.engine);
    now = await a.rollouts.get(r.id, one.write);
    assert.deepEqual([now.counts.succeeded, now.counts.skipped], [1, 5]);
    assert.ok(now.finishedAt !== null);
  });

  it('retries a failed device once per attempt, and trips the threshold once (one audit record)', async () => {
    const a = managerOn(one);
    const b = managerOn(two);
    const devices = deviceIds.slice(40, 60);
    const r = await a.rollouts.create({
      name: 'trip', operation: { kind: 'vm.power', vmId: 'vm-100', action: 'off' }, deviceIds: devices, waves: { sizes: [20] }, retries: 1,
      errorThreshold: { count: 5, action: 'pause' },
    }, 'test');
    const by = `rollout:${r.id}`;
    await race(a.engine, b.engine);
    await finishAll(by, 'failed', devices.slice(0, 6));
    await race(a.engine, b.engine);
    // First failures are retried (attempt 2), once each.
    const attempts = await one.write.selectFrom('tasks').select(['device_id', 'attempt']).where('created_by', '=', by).execute();
    for (const d of devices.slice(0, 6)) assert.deepEqual(attempts.filter((t) => t.device_id === d).map((t) => t.attempt).sort(), [1, 2], d);
    await finishAll(by, 'failed', devices.slice(0, 6));
    await race(a.engine, b.engine);
    const paused = await a.rollouts.get(r.id, one.write);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.reason, 'error_threshold');
    assert.equal(paused.counts.failed, 6);
    const audits = await one.write.selectFrom('audit_log').select('id').where('action', '=', 'rollout.threshold-tripped').where('target_id', '=', r.id).execute();
    assert.equal(audits.length, 1);
    // No third attempt for anyone.
    assert.equal((await one.write.selectFrom('tasks').select('id').where('created_by', '=', by).where('attempt', '>', 2).execute()).length, 0);
  });

  it('refuses all but one of concurrent creates of the same operation on one device (409), race-free', async () => {
    const a = managerOn(one);
    const b = managerOn(two);
    const op: TaskOperation = { kind: 'vm.power', vmId: 'vm-200', action: 'off' };
    const mine: string[] = [];
    const at = new Date().toISOString();
    for (let i = 0; i < 4; i++) {
      const id = randomUUID();
      mine.push(id);
      await one.write.insertInto('devices').values({
        id, name: `clash-${i}`, secret_hash: 'x', presence: 'online', last_seen_at: at, enrolled_at: at, updated_at: at,
        enrollment_token_id: null, hypervisor_kind: 'sim', agent_version: '0.1.0', facts: null, vms: null, status_seq: 0, status: 'active',
        pending_secret_hash: null, flags: null, last_address: null,
      }).execute();
    }
    for (let round = 0; round < 6; round++) {
      // Four creates at the same moment from two managers; every pair shares device `mine[0]`.
      const results: Array<PromiseSettledResult<{ id: string }>> = await Promise.allSettled([
        a.rollouts.create({ name: `c${round}-1`, operation: op, deviceIds: [mine[0]!, mine[1]!] }, 'test'),
        b.rollouts.create({ name: `c${round}-2`, operation: op, deviceIds: [mine[2]!, mine[0]!] }, 'test'),
        a.rollouts.create({ name: `c${round}-3`, operation: op, deviceIds: [mine[0]!] }, 'test'),
        b.rollouts.create({ name: `c${round}-4`, operation: op, deviceIds: [mine[3]!, mine[0]!] }, 'test'),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status === 'fulfilled' ? 'created' : String((r.reason as Error).message)).join(' | ')}`);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'conflict', String(r.reason));
      }
      // The database agrees: one open rollout of the operation per device, nothing half-created.
      const open = await one.write.selectFrom('rollout_devices').innerJoin('rollouts', 'rollouts.id', 'rollout_devices.rollout_id')
        .select('rollout_devices.device_id').where('rollouts.state', 'in', ['running', 'paused']).where('rollouts.operation_kind', '=', 'vm.power')
        .where('rollout_devices.device_id', '=', mine[0]!).execute();
      assert.equal(open.length, 1);
      const made = await one.write.selectFrom('rollouts').select('id').where('name', 'like', `c${round}-%`).execute();
      assert.equal(made.length, 1);
      await a.rollouts.abort((won[0] as PromiseFulfilledResult<{ id: string }>).value.id, 'test');
    }
  });
}

describe('rollout engine, two managers at once, sqlite', () => engineSuite(sqliteTarget, false));
describe('rollout engine, two managers at once, postgres', { skip: pgSkip() }, () => engineSuite(() => postgresTarget(PG_URL!), true));
