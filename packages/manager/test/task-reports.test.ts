/**
 * A task-report flush in-process, on each store: what it stores and announces, and how many
 * round trips to the database it takes (every statement counted, BEGIN and COMMIT too: on
 * PostgreSQL each is a socket write and a wake-up on both sides, what a cluster manager
 * spends most of its CPU on under a fan-out; docs/benchmarks.md).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Kysely, sql } from 'kysely';
import { pino } from 'pino';
import type { LiveEvent, Task, TaskResult, Vm } from '@pallas/protocol';
import { sampleHostFacts } from '@pallas/testkit';
import type { Broker } from '../src/broker/broker.js';
import { DeviceCredentials } from '../src/services/devices/device-credentials.js';
import { DeviceInventory } from '../src/services/devices/device-inventory.js';
import { OnlineDevices } from '../src/services/devices/online-devices.js';
import { EnrollmentService } from '../src/services/enrollment/enrollment-service.js';
import { EventBus } from '../src/services/live/event-bus.js';
import { TaskOutbox } from '../src/services/tasks/task-outbox.js';
import { newTaskId } from '../src/services/tasks/task-id.js';
import { TaskReports } from '../src/services/tasks/task-reports.js';
import { StrandedTasks } from '../src/services/tasks/stranded-tasks.js';
import type { ManagerInstances } from '../src/services/cluster/manager-instances.js';
import { openStore, type Database, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';
import { fakeVm } from './support.js';

const logger = pino({ level: 'silent' });

/**
 * The same database again through writers of their own that log every statement they send:
 * Kysely sends BEGIN and COMMIT through the same connection method, so they are counted too.
 * The lazy writer's statements are logged with "lazy: " before them (on SQLite it is the writer).
 */
async function countingStore(url: string, log: (sql: string) => void): Promise<Store> {
  const sqlite = url.startsWith('sqlite:');
  const { postgresDialect } = await import('../src/store/postgres/postgres-dialect.js');
  const dialect = sqlite
    ? (await import('../src/store/sqlite/sqlite-dialect.js')).sqliteDialect(url.slice('sqlite:'.length))
    : postgresDialect(url);
  const write = new Kysely<Database>({ dialect, log: (e) => log(e.query.sql) });
  const lazy = sqlite ? write : new Kysely<Database>({ dialect: postgresDialect(url, 2, true), log: (e) => log(`lazy: ${e.query.sql}`) });
  return {
    dialect: sqlite ? 'sqlite' : 'postgres', write, lazy, read: write, migrate: async () => {}, ping: async () => {},
    close: async () => { await write.destroy(); if (lazy !== write) await lazy.destroy(); },
  };
}

const targets: Array<[string, () => Promise<StoreTarget>, false | string]> = [
  ['sqlite', sqliteTarget, false],
  ['postgres', () => postgresTarget(PG_URL!), pgSkip()],
];

for (const [name, makeTarget, skip] of targets) describe(`task reports (${name})`, { skip }, () => {
  let target: StoreTarget;
  let store: Store;
  /** The store's writer again, on a connection of its own that counts what it sends. */
  let counted: Store;
  let sent: string[] = [];
  let enrollment: EnrollmentService;
  const events = new EventBus();
  const seen: LiveEvent[] = [];
  events.subscribe(({ event }) => { if (event.type !== 'reset') seen.push(event); });
  const acked: string[] = [];
  const broker = { publish: async (_topic: string, payload: string) => { acked.push(...(JSON.parse(payload) as { taskIds: string[] }).taskIds); } } as unknown as Broker;
  const outbox = { pump: async () => {} } as unknown as TaskOutbox;

  before(async () => {
    target = await makeTarget();
    store = await openStore(target.url);
    await store.migrate();
    counted = await countingStore(target.url, (q) => sent.push(q));
    enrollment = new EnrollmentService({ store, credentials: new DeviceCredentials(store), settings: { keepaliveSec: 30, statusIntervalSec: 60 }, logger });
  });
  after(async () => {
    await counted?.close();
    await store?.close();
    await target?.dispose();
  });

  const newDevice = async (): Promise<string> => {
    const id = randomUUID();
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    await enrollment.enroll({ token: token.token, deviceId: id, facts: sampleHostFacts(id.slice(0, 8)) }, 'mqtt://x:1');
    await store.write.updateTable('devices').set({ vms: '[]' }).where('id', '=', id).execute();
    return id;
  };
  const newTask = async (deviceId: string, state = 'sent'): Promise<string> => {
    const id = newTaskId();
    const now = new Date().toISOString();
    await store.write.insertInto('tasks').values({
      id, device_id: deviceId, kind: 'vm.create', operation: JSON.stringify({ kind: 'vm.create', spec: { name: 'x', vcpus: 1, memoryMB: 256, diskGB: 1 } }),
      vm_id: null, state, progress_pct: 0, progress_message: null, cancel_requested: 0, error_code: null, error_message: null, result_vm: null,
      late_result: null, retry_of: null, attempt: 1, created_by: 'admin', created_at: now, sent_at: now, sent_by: null, started_at: null,
      finished_at: null, deadline_at: new Date(Date.now() + 3600_000).toISOString(), updated_at: now,
      device_name: null, vm_name: null, artifact_name: null, artifact_version: null,
    }).execute();
    return id;
  };
  const row = (id: string) => store.write.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const stored = async (deviceId: string): Promise<Vm[]> =>
    JSON.parse((await store.write.selectFrom('devices').select('vms').where('id', '=', deviceId).executeTakeFirstOrThrow()).vms ?? '[]') as Vm[];
  const result = (taskId: string, outcome: TaskResult['outcome'], extra: Partial<TaskResult> = {}): TaskResult => ({ taskId, outcome, finishedAt: new Date().toISOString(), ...extra });
  const progress = (taskId: string, pct: number, message?: string) => ({ taskId, pct, at: new Date().toISOString(), ...(message ? { message } : {}) });

  const reports = (inventory: DeviceInventory) => new TaskReports({ store: counted, broker, outbox, events, inventory, logger, flushMs: 60_000 });

  it('stores a flush of progress alone in one statement through the lazy writer, whatever the percentages, and only a device\'s own active tasks', async () => {
    const a = await newDevice();
    const b = await newDevice();
    const t1 = await newTask(a);
    const t2 = await newTask(a);
    const t3 = await newTask(b);
    const done = await newTask(b, 'succeeded');
    const r = reports(new DeviceInventory({ store: counted, events, logger }));
    r.progress(a, progress(t1, 10, 'copying'));
    r.progress(a, progress(t2, 40));
    r.progress(a, progress(t3, 50)); // b's task
    r.progress(b, progress(done, 60)); // final already
    sent = [];
    await r.flush();
    assert.equal(sent.length, 1, `one round trip, not: ${sent.join(' | ')}`);
    // On PostgreSQL the statement goes through the lazy writer (its commit does not wait for
    // the WAL flush), and locks its rows first, in id order (lockTasks: no deadlock with
    // another manager's flush of the same tasks).
    if (name === 'postgres') assert.match(sent[0]!, /^lazy: with "locked" as materialized \(select "id" from "tasks" where "id" in \(.*\) order by id collate "C" for update\) update/, sent[0]);
    assert.deepEqual([(await row(t1)).state, (await row(t1)).progress_pct, (await row(t1)).progress_message], ['running', 10, 'copying']);
    assert.deepEqual([(await row(t2)).state, (await row(t2)).progress_pct, (await row(t2)).progress_message], ['running', 40, null]);
    assert.deepEqual([(await row(t3)).state, (await row(t3)).progress_pct], ['sent', 0]);
    assert.deepEqual([(await row(done)).state, (await row(done)).progress_pct], ['succeeded', 0]);
    const announced = seen.splice(0).flatMap((e) => (e.type === 'task' ? [`${e.task.id} ${e.task.state} ${e.task.progress.pct}`] : []));
    assert.deepEqual(announced.sort(), [`${t1} running 10`, `${t2} running 40`].sort());
  });

  it('stores progress, results and their VMs in one transaction of five round trips (six on PostgreSQL: the rows are locked first, in one order); announces progress first; acknowledges every result', async () => {
    const devices = [await newDevice(), await newDevice(), await newDevice()];
    const tasks = [await newTask(devices[0]!), await newTask(devices[1]!), await newTask(devices[2]!)];
    const inventory = new DeviceInventory({ store: counted, events, logger });
    // The manager knows these devices' lists (heard since its start): no read of them.
    for (const d of devices) inventory.reported(d, []);
    await inventory.flush();
    const r = reports(inventory);
    const vms = tasks.map((t, i) => fakeVm(`vm-${i}`, `x-${i}`));
    acked.length = 0;
    seen.length = 0;
    for (let i = 0; i < 3; i++) r.progress(devices[i]!, progress(tasks[i]!, 50));
    for (let i = 0; i < 3; i++) r.result(devices[i]!, result(tasks[i]!, 'succeeded', { vm: vms[i]! }));
    sent = [];
    await r.flush();
    // A flush with results goes through the durable writer, progress and all.
    assert.deepEqual(sent.map((q) => q.split(/\s/)[0]!.toLowerCase()), name === 'postgres'
      ? ['begin', 'select', 'update', 'update', 'with', 'commit']
      : ['begin', 'update', 'update', 'update', 'commit'], sent.join(' | '));
    if (name === 'postgres') assert.match(sent[1]!, /order by id collate "C" for update$/, sent[1]);
    for (let i = 0; i < 3; i++) {
      const x = await row(tasks[i]!);
      assert.deepEqual([x.state, x.progress_pct, x.vm_id, JSON.parse(x.result_vm!)], ['succeeded', 100, vms[i]!.id, vms[i]]);
      assert.deepEqual(await stored(devices[i]!), [vms[i]]);
    }
    assert.deepEqual(acked.sort(), [...tasks].sort());
    const order = seen.flatMap((e) => (e.type === 'task' ? [e.task.state] : []));
    assert.deepEqual(order, ['running', 'running', 'running', 'succeeded', 'succeeded', 'succeeded']);
    assert.equal(seen.filter((e) => e.type === 'vms').length, 3);
  });

  it('keeps the first result of a task; a different one after it is late news, a repeat none, another device\'s ignored', async () => {
    const d = await newDevice();
    const liar = await newDevice();
    const t = await newTask(d);
    const other = await newTask(d);
    const timedOut = await newTask(d, 'timed_out');
    const inventory = new DeviceInventory({ store: counted, events, logger });
    const r = reports(inventory);
    acked.length = 0;
    r.result(d, result(t, 'failed', { error: { code: 'no_space', message: 'full' } }));
    r.result(d, result(t, 'succeeded', { vm: fakeVm('vm-t') })); // the same task again, another outcome
    r.result(d, result(t, 'failed', { error: { code: 'no_space', message: 'full' } })); // a repeat
    r.result(liar, result(other, 'succeeded', { vm: fakeVm('vm-liar') }));
    r.result(d, result(timedOut, 'succeeded', { vm: fakeVm('vm-late') }));
    await r.flush();
    const x = await row(t);
    assert.deepEqual([x.state, x.error_code, x.result_vm], ['failed', 'no_space', null]);
    assert.equal(JSON.parse(x.late_result!).outcome, 'succeeded');
    assert.equal((await row(other)).state, 'sent');
    const late = await row(timedOut);
    assert.deepEqual([late.state, JSON.parse(late.late_result!).outcome, late.result_vm], ['timed_out', 'succeeded', null]);
    assert.deepEqual(await stored(d), [], 'no VM from a failed or late task');
    assert.deepEqual(acked.sort(), [t, t, t, other, timedOut].sort());
    const states = seen.splice(0).flatMap((e) => (e.type === 'task' ? [e.task as Task] : []));
    assert.ok(states.some((s) => s.id === timedOut && s.lateResult?.outcome === 'succeeded'));
  });

  it('stores U+0000 in a result\'s error code and VM id as U+FFFD, on an active task and as late news on a final one (PostgreSQL refuses U+0000 in text)', async () => {
    const d = await newDevice();
    const active = await newTask(d);
    const final = await newTask(d, 'succeeded');
    const r = reports(new DeviceInventory({ store: counted, events, logger }));
    acked.length = 0;
    r.result(d, result(active, 'failed', { error: { code: 'bad\u0000code', message: 'm\u0000' }, vm: fakeVm('vm\u0000x') }));
    r.result(d, result(final, 'failed', { error: { code: 'bad\u0000code', message: 'm' }, vm: fakeVm('vm\u0000y') }));
    await r.flush();
    await r.stop();
    const x = await row(active);
    assert.deepEqual([x.state, x.error_code, x.error_message, x.vm_id], ['failed', 'bad\uFFFDcode', 'm\uFFFD', 'vm\uFFFDx']);
    assert.equal(JSON.parse((await row(final)).late_result!).outcome, 'failed');
    assert.deepEqual(acked.sort(), [active, final].sort());
  });

  it('stores the other reports of a flush the store refuses one of; drops that one after three refusals while others went in, not while the store refuses all', async () => {
    // A report the store refuses, whatever the reason: a trigger stands in for it on both stores.
    if (name === 'sqlite') {
      await sql`create trigger poison before update on tasks when new.error_code = 'poison' begin select raise(abort, 'poisoned report'); end`.execute(store.write);
    } else {
      await sql`create function poison() returns trigger language plpgsql as $$ begin if new.error_code = 'poison' then raise exception 'poisoned report'; end if; return new; end $$`.execute(store.write);
      await sql`create trigger poison before update on tasks for each row execute function poison()`.execute(store.write);
    }
    try {
      const d = await newDevice();
      const poisoned = await newTask(d);
      const r = reports(new DeviceInventory({ store: counted, events, logger }));
      acked.length = 0;
      const good: string[] = [];
      const withAGoodOne = async (): Promise<void> => {
        const t = await newTask(d);
        good.push(t);
        r.result(d, result(t, 'succeeded'));
        r.progress(d, progress(t, 90));
        await r.flush();
      };
      r.result(d, result(poisoned, 'failed', { error: { code: 'poison', message: 'x' } }));
      await withAGoodOne(); // refused once while others went in
      for (let i = 0; i < 3; i++) {
        sent = [];
        await r.flush(); // alone: the store may be at fault, nothing counts
        assert.ok(sent.length > 0, 'the refused report is still queued');
      }
      await withAGoodOne(); // twice
      await withAGoodOne(); // three times: dropped
      sent = [];
      await r.flush();
      assert.deepEqual(sent, [], 'nothing left to store');
      await r.stop();
      for (const t of good) assert.equal((await row(t)).state, 'succeeded');
      assert.equal((await row(poisoned)).state, 'sent');
      assert.deepEqual(acked.sort(), [...good].sort(), 'the refused result is not acknowledged: its device sends it again');
    } finally {
      await sql`drop trigger poison${sql.raw(name === 'sqlite' ? '' : ' on tasks')}`.execute(store.write);
      if (name !== 'sqlite') await sql`drop function poison()`.execute(store.write);
    }
  });

  it('claims a dead manager\'s in-flight tasks in one statement, its rows locked first in the flushes\' order on PostgreSQL; nobody else\'s, nothing final', async () => {
    const d = await newDevice();
    const mine = [await newTask(d), await newTask(d, 'running')];
    const final = await newTask(d, 'succeeded');
    const others = await newTask(d);
    for (const id of [...mine, final]) await store.write.updateTable('tasks').set({ sent_by: 'm-dead' }).where('id', '=', id).execute();
    await store.write.updateTable('tasks').set({ sent_by: 'm-alive' }).where('id', '=', others).execute();
    const resent: string[] = [];
    const sweep = new StrandedTasks({
      store: counted, logger,
      instances: { id: 'm-me', deadIds: async () => ['m-dead'] } as unknown as ManagerInstances,
      outbox: { deviceOnline: async (device: string) => void resent.push(device), pump: async () => {} } as unknown as TaskOutbox,
      online: { isOnline: () => false } as unknown as OnlineDevices,
    });
    sent = [];
    assert.equal(await sweep.sweep(), 2);
    const update = sent.filter((q) => /update "tasks"/.test(q));
    assert.equal(update.length, 1, sent.join(' | '));
    if (name === 'postgres') assert.match(update[0]!, /^with "locked" as materialized \(select "id" from "tasks" where "id" in \(.*\) order by id collate "C" for update\) update/, update[0]);
    assert.deepEqual(await Promise.all(mine.map(async (id) => (await row(id)).sent_by)), ['m-me', 'm-me']);
    assert.equal((await row(final)).sent_by, 'm-dead');
    assert.equal((await row(others)).sent_by, 'm-alive');
    assert.deepEqual(resent, [d], 'the device is sent its in-flight tasks again');
  });

  it('fills windows after results in one read when nothing is queued, two when something is; sends the oldest queued up to the room', async () => {
    const idle = await newDevice();
    const backlog = await newDevice();
    const online = new OnlineDevices();
    online.markOnline(idle);
    online.markOnline(backlog);
    const published: string[] = [];
    const outbox = new TaskOutbox({
      store: counted, online, events, logger, window: 2,
      broker: { publish: async (_topic: string, payload: string) => { published.push((JSON.parse(payload) as { taskId: string }).taskId); } } as unknown as Broker,
    });
    await newTask(idle, 'succeeded');
    sent = [];
    await outbox.pump(idle);
    assert.equal(sent.length, 1, sent.join('\n'));
    assert.deepEqual(published, []);

    const inFlight = await newTask(backlog, 'running');
    const queued = [await newTask(backlog, 'queued'), await newTask(backlog, 'queued')];
    sent = [];
    await outbox.pump(backlog);
    // The queued read, the window's read, the mark: one task fits beside the one running.
    assert.equal(sent.length, 3, sent.join('\n'));
    assert.deepEqual(published, [queued[0]]);
    assert.equal((await row(queued[0]!)).state, 'sent');
    assert.equal((await row(queued[1]!)).state, 'queued');
    assert.equal((await row(inFlight)).state, 'running');
  });
});
