/**
 * The task engine against a real manager process, with scripted devices speaking the wire
 * protocol over MQTT: states, the outbox and its window, redelivery, cancel, deadline and
 * late results, retry, a device reporting on a task that is not its own, and the live stream.
 * (The real agent's side is tested in packages/agent and end to end in test/e2e.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { SignedArtifact, Task, TaskCommand, TaskResult, Vm, VmSpec } from '@pallas/protocol';
import { Api, createEnrollmentToken, openEventStream, startManagerProcess, tarOf, waitFor, type ManagerProcess } from '@pallas/testkit';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';
import { closeClient, connect, enroll, expectError, fakeVm, type Enrolled } from './support.js';

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;
const spec = (name: string): VmSpec => ({ name, vcpus: 1, memoryMB: 256, diskGB: 1 });

/** A device played by the test: connects, subscribes, says online, and records commands. */
class ScriptedDevice {
  readonly commands: TaskCommand[] = [];
  readonly acked: string[] = [];
  client: MqttClient | undefined;
  constructor(readonly enrolled: Enrolled, readonly mqttUrl: string) {}

  get id(): string {
    return this.enrolled.deviceId;
  }

  async online(): Promise<void> {
    const client = await connect(this.mqttUrl, this.enrolled.creds);
    client.on('message', (t, payload) => {
      const body = JSON.parse(payload.toString()) as never;
      if (t.endsWith('/cmd/task')) this.commands.push(body);
      if (t.endsWith('/cmd/task-ack')) this.acked.push(...(body as { taskIds: string[] }).taskIds);
    });
    await client.subscribeAsync(topic(this.id, 'cmd/#'), { qos: 1 });
    await client.publishAsync(topic(this.id, 'presence'), JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    this.client = client;
    // The manager handles the presence after the broker's ack: until then a new task is queued.
    await waitFor('online', async () => (await admin.get<{ presence: string }>(`/api/v1/devices/${this.id}`)).body.presence === 'online');
  }

  async offline(): Promise<void> {
    await this.client?.publishAsync(topic(this.id, 'presence'), JSON.stringify({ state: 'offline', reason: 'test' }), { qos: 1 });
    await closeClient(this.client);
    this.client = undefined;
  }

  runs(): string[] {
    return this.commands.filter((c) => c.type === 'run').map((c) => c.taskId);
  }

  async progress(taskId: string, pct: number, message?: string): Promise<void> {
    await this.client!.publishAsync(topic(this.id, 'task/progress'), JSON.stringify({ taskId, pct, at: new Date().toISOString(), ...(message ? { message } : {}) }), { qos: 1 });
  }

  async result(taskId: string, outcome: TaskResult['outcome'], extra: Partial<TaskResult> = {}): Promise<void> {
    const result: TaskResult = { taskId, outcome, finishedAt: new Date().toISOString(), ...extra };
    await this.client!.publishAsync(topic(this.id, 'task/result'), JSON.stringify(result), { qos: 1 });
  }
}

let manager: ManagerProcess;
let admin: Api;
let token: string;
const devices: ScriptedDevice[] = [];

async function newDevice(name: string): Promise<ScriptedDevice> {
  const d = new ScriptedDevice(await enroll(manager.api, token, name), manager.mqttUrl);
  devices.push(d);
  return d;
}

async function createVm(deviceId: string, name: string, query = ''): Promise<Task> {
  const res = await admin.post<Task>(`/api/v1/devices/${deviceId}/vms${query}`, spec(name));
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

async function task(id: string): Promise<Task> {
  const res = await admin.get<Task>(`/api/v1/tasks/${id}`);
  assert.equal(res.status, 200);
  return res.body;
}

const waitState = (id: string, state: Task['state']) =>
  waitFor(`task ${id} to be ${state}`, async () => ((await task(id)).state === state ? task(id) : false));

// The engine's queries run on both stores: SQLite always, PostgreSQL too (skipped only on a
// partial run without a server; npm test and CI provide one).
const targets: Array<[string, () => Promise<StoreTarget>, false | string]> = [
  ['sqlite', sqliteTarget, false],
  ['postgres', () => postgresTarget(PG_URL!), pgSkip()],
];

for (const [name, makeTarget, skip] of targets) describe(`task engine (${name})`, { skip }, () => {
  let target: StoreTarget;

  before(async () => {
    target = await makeTarget();
    manager = await startManagerProcess({ args: ['--task-sweep-ms', '100'], database: { url: target.url } });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { name: 'tasks', maxUses: 50 });
  });

  after(async () => {
    await Promise.all(devices.splice(0).map((d) => closeClient(d.client)));
    await manager?.close();
    await target?.dispose();
  });

  it('walks sent → running → succeeded (sent as it is created: the device is online), acknowledges the result, and streams every step', async () => {
    const d = await newDevice('happy');
    await d.online();
    const stream = await openEventStream(manager.httpUrl, admin.token!, { deviceId: d.id });
    try {
      const created = await createVm(d.id, 'web-1');
      // Online with room in its window: marked sent in the transaction that created it.
      assert.equal(created.state, 'sent');
      assert.ok(created.sentAt);
      assert.equal(created.kind, 'vm.create');
      assert.equal(created.createdBy, 'admin');
      assert.equal(created.attempt, 1);
      await waitFor('run command', () => d.runs().includes(created.id));
      const run = d.commands.find((c) => c.type === 'run' && c.taskId === created.id);
      assert.ok(run?.type === 'run' && run.operation.kind === 'vm.create' && run.operation.spec.name === 'web-1');
      assert.ok(run.timeoutMs > 23 * 3600 * 1000, 'the default deadline is 24 h');
      assert.equal((await task(created.id)).state, 'sent');
      await d.progress(created.id, 0);
      await d.progress(created.id, 40, 'allocating disk');
      const running = await waitFor('running at 40%', async () => {
        const t = await task(created.id);
        return t.state === 'running' && t.progress.pct === 40 && t;
      });
      assert.equal(running.progress.message, 'allocating disk');
      assert.ok(running.startedAt);
      const vm = fakeVm('vm-7', 'web-1');
      await d.result(created.id, 'succeeded', { vm });
      const done = await waitState(created.id, 'succeeded');
      assert.equal(done.vmId, 'vm-7');
      assert.deepEqual(done.vm, vm);
      assert.equal(done.progress.pct, 100);
      await waitFor('ack', () => d.acked.includes(created.id));
      // A duplicate result (re-sent before the ack arrived) is acknowledged and is no news.
      await d.result(created.id, 'succeeded', { vm });
      await waitFor('second ack', () => d.acked.filter((id) => id === created.id).length === 2);
      assert.equal((await task(created.id)).lateResult, null);
      const states = await waitFor('all states on the stream', () => {
        const seen = stream.events.filter((e) => e.type === 'task' && e.task.id === created.id).map((e) => (e.type === 'task' ? e.task.state : ''));
        return seen.includes('succeeded') && seen;
      });
      assert.deepEqual([...new Set(states)], ['sent', 'running', 'succeeded']);
    } finally {
      stream.close();
    }
  });

  it('applies a succeeded task\'s VM to the device\'s inventory at once, before any status report', async () => {
    const d = await newDevice('inventory');
    await d.online();
    const stream = await openEventStream(manager.httpUrl, admin.token!, { deviceId: d.id });
    const vmsNow = async () => (await admin.get<Vm[]>(`/api/v1/devices/${d.id}/vms`)).body;
    try {
      // This device never sends a status report: whatever the list shows came from results.
      const created = await createVm(d.id, 'inv-1');
      await waitFor('run command', () => d.runs().includes(created.id));
      const vm: Vm = { ...fakeVm('vm-inv-1', 'inv-1'), powerState: 'off' };
      await d.result(created.id, 'succeeded', { vm });
      await waitState(created.id, 'succeeded');
      assert.deepEqual(await vmsNow(), [vm]);

      const power = await admin.post<Task>(`/api/v1/devices/${d.id}/vms/${vm.id}/power`, { action: 'on' });
      assert.equal(power.status, 202);
      await waitFor('power command', () => d.runs().includes(power.body.id));
      await d.result(power.body.id, 'succeeded', { vm: { ...vm, powerState: 'on' } });
      await waitState(power.body.id, 'succeeded');
      assert.deepEqual(await vmsNow(), [{ ...vm, powerState: 'on' }]);

      // A failed task changes nothing.
      const failing = await admin.post<Task>(`/api/v1/devices/${d.id}/vms/${vm.id}/power`, { action: 'reset' });
      await waitFor('reset command', () => d.runs().includes(failing.body.id));
      await d.result(failing.body.id, 'failed', { error: { code: 'host_error', message: 'no' } });
      await waitState(failing.body.id, 'failed');
      assert.deepEqual(await vmsNow(), [{ ...vm, powerState: 'on' }]);

      // The VM is on: forced past the manager's check (docs/tasks.md#checks-before-queuing).
      const removed = await admin.delete<Task>(`/api/v1/devices/${d.id}/vms/${vm.id}?force=true`);
      assert.equal(removed.status, 202, JSON.stringify(removed.body));
      await waitFor('delete command', () => d.runs().includes(removed.body.id));
      await d.result(removed.body.id, 'succeeded');
      await waitState(removed.body.id, 'succeeded');
      assert.deepEqual(await vmsNow(), []);

      const lists = await waitFor('three vms events', () => {
        const seen = stream.events.flatMap((e) => (e.type === 'vms' ? [e.vms] : []));
        return seen.length >= 3 && seen;
      });
      assert.deepEqual(lists, [[vm], [{ ...vm, powerState: 'on' }], []]);
    } finally {
      stream.close();
    }
  });

  it('keeps tasks for an offline device in its outbox and sends them in order, a window at a time', async () => {
    const d = await newDevice('offline');
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await createVm(d.id, `vm-${i}`)).id);
    const listed = await admin.get<{ items: Task[]; total: number }>(`/api/v1/tasks?deviceId=${d.id}&state=queued&limit=100`);
    assert.equal(listed.body.total, 40);
    await d.online();
    await waitFor('first window', () => d.runs().length === 16);
    // The outbox marks what it sends `sent` in the store before publishing it, in the same
    // round: the store saying 16 sent and 24 queued is what bounds what can still arrive.
    const byState = async (state: string) => (await admin.get<{ items: Task[]; total: number }>(`/api/v1/tasks?deviceId=${d.id}&state=${state}&limit=100`)).body;
    const sent = await byState('sent');
    assert.deepEqual(sent.items.map((t) => t.id).sort(), ids.slice(0, 16).sort(), 'the window marked sent');
    assert.equal((await byState('queued')).total, 24, 'the rest still queued');
    assert.deepEqual(d.runs(), ids.slice(0, 16), 'only the window, oldest first');
    for (const id of ids.slice(0, 16)) await d.result(id, 'succeeded');
    await waitFor('next window', () => d.runs().length === 32);
    assert.deepEqual(d.runs(), ids.slice(0, 32));
  });

  it('sends an online device\'s new tasks at once up to its window; the rest wait queued, behind in order', async () => {
    const d = await newDevice('busy');
    await d.online();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await createVm(d.id, `w-${i}`)).id);
    const states = await Promise.all(ids.map(async (id) => (await task(id)).state));
    assert.deepEqual(states, [...Array(16).fill('sent'), ...Array(4).fill('queued')]);
    // One more while four wait: it goes behind them, not into the room the next result makes.
    const later = (await createVm(d.id, 'w-later')).id;
    assert.equal((await task(later)).state, 'queued');
    await waitFor('the window', () => d.runs().length === 16);
    assert.deepEqual(d.runs(), ids.slice(0, 16));
    for (const id of ids.slice(0, 16)) await d.result(id, 'succeeded');
    await waitFor('the rest', () => d.runs().length === 21);
    assert.deepEqual(d.runs(), [...ids, later]);
  });

  it('re-sends what was in flight when the device reconnects', async () => {
    const d = await newDevice('flaky');
    await d.online();
    const t = await createVm(d.id, 'again');
    await waitFor('sent', () => d.runs().includes(t.id));
    await d.offline();
    d.commands.length = 0;
    await d.online();
    await waitFor('redelivered', () => d.runs().includes(t.id));
    assert.equal((await task(t.id)).state, 'sent');
  });

  it('cancels a queued task at once, and asks the device to stop one it holds', async () => {
    const d = await newDevice('cancel');
    const queued = await createVm(d.id, 'never');
    const c1 = await admin.post<Task>(`/api/v1/tasks/${queued.id}/cancel`);
    assert.equal(c1.status, 202);
    assert.equal(c1.body.state, 'cancelled');
    assert.equal(c1.body.error?.code, 'cancelled');
    expectError(await admin.post(`/api/v1/tasks/${queued.id}/cancel`), 409, 'task_final', 'cancelled');

    await d.online();
    const held = await createVm(d.id, 'stop-me');
    await waitFor('sent', () => d.runs().includes(held.id));
    assert.ok(!d.runs().includes(queued.id), 'a cancelled queued task is never sent');
    const c2 = await admin.post<Task>(`/api/v1/tasks/${held.id}/cancel`);
    assert.equal(c2.body.state, 'sent');
    assert.equal(c2.body.cancelRequested, true);
    await waitFor('cancel command', () => d.commands.some((c) => c.type === 'cancel' && c.taskId === held.id));
    await d.result(held.id, 'cancelled');
    await waitState(held.id, 'cancelled');
  });

  it('times out at the deadline; a late result is recorded and does not revive the task', async () => {
    const d = await newDevice('slow');
    await d.online();
    const t = await createVm(d.id, 'late', '?timeoutSec=1');
    await waitFor('sent', () => d.runs().includes(t.id));
    await d.progress(t.id, 0);
    const timedOut = await waitState(t.id, 'timed_out');
    assert.equal(timedOut.error?.code, 'timed_out');
    assert.match(timedOut.error!.message, /running on the device/);
    await waitFor('cancel after the deadline', () => d.commands.some((c) => c.type === 'cancel' && c.taskId === t.id));
    await d.result(t.id, 'succeeded', { vm: fakeVm('vm-late', 'late') });
    const after = await waitFor('late result', async () => {
      const x = await task(t.id);
      return x.lateResult !== null && x;
    });
    assert.equal(after.state, 'timed_out');
    assert.equal(after.lateResult?.outcome, 'succeeded');
    assert.equal(after.vm, null);
    await waitFor('late result acked', () => d.acked.includes(t.id));
  });

  it('times out a queued task of a device that never came back', async () => {
    const d = await newDevice('gone');
    const t = await createVm(d.id, 'q', '?timeoutSec=1');
    const x = await waitState(t.id, 'timed_out');
    assert.match(x.error!.message, /still queued/);
    assert.equal(x.sentAt, null);
  });

  it('retries a failed task as a new attempt linked to the first', async () => {
    const d = await newDevice('retry');
    await d.online();
    const t = await createVm(d.id, 'r');
    await waitFor('sent', () => d.runs().includes(t.id));
    await d.result(t.id, 'failed', { error: { code: 'no_space', message: 'no datastore has 1 GB free' } });
    const failed = await waitState(t.id, 'failed');
    assert.deepEqual(failed.error, { code: 'no_space', message: 'no datastore has 1 GB free' });
    const r = await admin.post<Task>(`/api/v1/tasks/${t.id}/retry`);
    assert.equal(r.status, 201);
    assert.equal(r.body.retryOf, t.id);
    assert.equal(r.body.attempt, 2);
    assert.deepEqual(r.body.operation, failed.operation);
    await waitFor('retry sent', () => d.runs().includes(r.body.id));
    expectError(await admin.post(`/api/v1/tasks/${r.body.id}/retry`), 409, 'task_final', 'sent');
  });

  it('ignores a device reporting on another device\'s task', async () => {
    const victim = await newDevice('victim');
    const liar = await newDevice('liar');
    await victim.online();
    await liar.online();
    const t = await createVm(victim.id, 'mine');
    await waitFor('sent', () => victim.runs().includes(t.id));
    await liar.progress(t.id, 50);
    await liar.result(t.id, 'failed', { error: { code: 'internal', message: 'lies' } });
    await waitFor('liar acked', () => liar.acked.includes(t.id));
    const x = await task(t.id);
    assert.equal(x.state, 'sent');
    assert.equal(x.lateResult, null);
  });

  it('refuses bad input with the field named, and unknown devices and tasks with 404', async () => {
    const d = await newDevice('bad-input');
    expectError(await admin.post(`/api/v1/devices/${d.id}/vms`, { ...spec('x'), vcpus: 0 }), 400, 'invalid_request', 'vcpus');
    expectError(await admin.post(`/api/v1/devices/${d.id}/vms`, { ...spec('x'), name: ' bad name ' }), 400, 'invalid_request', 'name');
    expectError(await admin.post(`/api/v1/devices/${d.id}/vms`, { ...spec('x'), colour: 'red' }), 400, 'invalid_request', 'colour');
    expectError(await admin.post(`/api/v1/devices/${d.id}/vms/vm-1/power`, { action: 'explode' }), 400, 'invalid_request', 'action');
    expectError(await admin.patch(`/api/v1/devices/${d.id}/vms/vm-1`, {}), 400, 'invalid_request');
    expectError(await admin.post(`/api/v1/devices/${d.id}/vms?timeoutSec=0`, spec('x')), 400, 'invalid_request', 'timeoutSec');
    expectError(await admin.post('/api/v1/devices/no-such-device/vms', spec('x')), 404, 'not_found', 'no-such-device');
    expectError(await admin.get('/api/v1/tasks/tsk_nope'), 404, 'not_found', 'tsk_nope');
  });

  it('lets viewers read tasks but not create them', async () => {
    const d = await newDevice('roles');
    await admin.post('/api/v1/users', { username: 'watcher', password: 'watcher-password', role: 'viewer' });
    const viewer = await manager.api.login('watcher', 'watcher-password');
    expectError(await viewer.post(`/api/v1/devices/${d.id}/vms`, spec('v')), 403, 'forbidden', 'operator');
    assert.equal((await viewer.get('/api/v1/tasks')).status, 200);
    assert.equal((await viewer.get(`/api/v1/devices/${d.id}/vms`)).status, 200);
  });

  it('fans one operation out to many devices, and ends a decommissioned device\'s tasks', async () => {
    const a = await newDevice('fan-a');
    const b = await newDevice('fan-b');
    await a.online();
    const res = await admin.post<{ count: number; taskIds: string[] }>('/api/v1/tasks', {
      operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' },
      deviceIds: [a.id, b.id],
    });
    assert.equal(res.status, 202);
    assert.equal(res.body.count, 2);
    await waitFor('a got it', () => a.runs().includes(res.body.taskIds[0]!));
    expectError(await admin.post('/api/v1/tasks', { operation: { kind: 'vm.delete', vmId: 'x' }, deviceIds: ['ghost'] }), 404, 'not_found', 'ghost');
    assert.equal((await admin.delete(`/api/v1/devices/${b.id}`)).status, 204);
    const gone = await task(res.body.taskIds[1]!);
    assert.equal(gone.state, 'cancelled');
    assert.equal(gone.error?.code, 'device_removed');
  });

  it('grants the artifacts a run names: signed manifest and a device URL, fresh at each send; none for other tasks', async () => {
    // An OVA as far as the upload check goes: a tar with a descriptor of one VM without disks.
    const bytes = tarOf([{ name: 'outbox.ovf', data: '<Envelope><VirtualSystem id="outbox"/></Envelope>' }]);
    const up = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=ova&name=outbox-${Date.now()}&version=1`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token!}`, 'content-type': 'application/octet-stream' }, body: bytes,
    });
    assert.equal(up.status, 201);
    const art = (await up.json()) as SignedArtifact;
    const d = await newDevice('grants');
    await d.online();
    const plain = await createVm(d.id, 'no-artifact');
    const res = await admin.post<Task>(`/api/v1/devices/${d.id}/vms/deploy`, { source: { kind: 'artifact', artifactId: art.id } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const runOf = (taskId: string, nth = 0) => d.commands.filter((c): c is Extract<TaskCommand, { type: 'run' }> => c.type === 'run' && c.taskId === taskId)[nth];
    await waitFor('deploy sent', () => runOf(res.body.id));
    assert.equal(runOf(plain.id)!.artifacts, undefined);
    const [g] = runOf(res.body.id)!.artifacts!;
    assert.deepEqual(g!.manifest, art.manifest);
    assert.equal(g!.signature, art.signature);
    assert.equal(g!.keyId, art.keyId);
    assert.match(g!.url, new RegExp(`^/dl/${art.id}\\?device=${d.id}&exp=\\d+&sig=`));
    const dl = await fetch(`${manager.httpUrl}${g!.url}`);
    assert.equal(dl.status, 200);
    assert.deepEqual(Buffer.from(await dl.arrayBuffer()), bytes);
    // Sent again after a reconnect: a new URL (a later expiry).
    await new Promise((r) => setTimeout(r, 1100));
    await d.offline();
    await d.online();
    await waitFor('deploy sent again', () => runOf(res.body.id, 1));
    const again = runOf(res.body.id, 1)!.artifacts![0]!;
    assert.notEqual(again.url, g!.url);
    assert.ok(Date.parse(again.expiresAt) > Date.parse(g!.expiresAt));
  });
});
