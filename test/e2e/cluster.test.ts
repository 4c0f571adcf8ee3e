/**
 * Several managers, end to end (docs/scale-out.md): three real manager processes on one fresh
 * PostgreSQL database and one Debian Mosquitto, behind Debian's nginx, with 50 real agents on
 * the sim driver. Exactly-once is checked on the devices' own state (each sim host's
 * `sim-host.json` history), not only in the API.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClusterStatus, Device, LiveEvent, Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, mosquittoMissingReason, nginxMissingReason, openEventStream, pgSkipReason, skipUnless, startAgentProcess, startCluster,
  tempDir, waitFor, Api, type Cluster, type Proc,
} from '@pallas/testkit';

const AGENTS = 50;
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

interface SimState {
  vms: Vm[];
  // op is the sim driver's operation name (createVm, powerVm, …: SimOperation).
  history: Array<{ op: string; vmId: string }>;
}
const simState = (stateDir: string): SimState => JSON.parse(readFileSync(join(stateDir, 'sim-host.json'), 'utf8')) as SimState;
const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

describe('several managers on PostgreSQL and Mosquitto behind nginx', { skip: skipUnless(pgSkipReason, mosquittoMissingReason(), nginxMissingReason()) }, () => {
  let cluster: Cluster;
  let admin: Api;
  let token: string;
  const dirs = tempDir('pallas-e2e-cluster-');
  const agents: Array<{ proc: Proc; stateDir: string; id: string }> = [];
  const managerUrl = (i: number) => cluster.managers[i]!.httpUrl;
  /** The admin session, through manager `i` directly (sessions live in the shared database). */
  const as = (i: number) => new Api(managerUrl(i), admin.token);

  const startAgent = (name: string, server: string): { proc: Proc; stateDir: string } => {
    const stateDir = join(dirs.path, name);
    const config = join(dirs.path, `${name}.json`);
    // Each create takes a little while, so that a manager can be killed while a fan-out is under way.
    writeFileSync(config, JSON.stringify({ sim: { latencyMs: 1_000 } }));
    const proc = startAgentProcess({ managerUrl: server, stateDir, token, args: ['--config', config] });
    return { proc, stateDir };
  };
  const online = async (stateDir: string, via: Api = admin, proc?: Proc): Promise<string> => {
    try {
      const id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir), { timeoutMs: 60_000 });
      await waitFor(`device ${id} online`, async () => (await via.get<Device>(`/api/v1/devices/${id}`)).body?.presence === 'online', { timeoutMs: 60_000 });
      return id;
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent output:\n${(proc ?? agents.find((a) => a.stateDir === stateDir)?.proc)?.output().slice(-4_000)}`);
    }
  };
  const task = async (id: string, via: Api = admin): Promise<Task> => (await via.get<Task>(`/api/v1/tasks/${id}`)).body;

  before(async () => {
    cluster = await startCluster({ managers: 3, managerArgs: ['--keepalive-sec', '5', '--status-interval-sec', '10'] });
    admin = await cluster.admin();
    token = await createEnrollmentToken(admin, { maxUses: AGENTS + 10 });
    // Enrolled through the load balancer: whichever manager nginx picks answers.
    // In batches: fifty Node processes starting at once take a small machine a while.
    for (let i = 0; i < AGENTS; i += 10) {
      const batch = Array.from({ length: Math.min(10, AGENTS - i) }, (_, k) => ({ ...startAgent(`agent-${i + k}`, cluster.url), id: '' }));
      agents.push(...batch);
      for (const a of batch) a.id = await online(a.stateDir, admin, a.proc);
    }
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.proc.kill()));
    await cluster?.close();
    dirs.cleanup();
  });

  it('every manager answers any call and knows every device', async () => {
    for (let i = 0; i < 3; i++) {
      const page = (await as(i).get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body;
      assert.equal(page.total, AGENTS, `manager ${i + 1} sees every device online`);
    }
    const status = (await admin.get<ClusterStatus>('/api/v1/cluster')).body;
    assert.equal(status.database, 'postgres');
    assert.equal(status.broker.kind, 'external');
    assert.equal(status.broker.ok, true);
    assert.equal(status.managers.filter((m) => m.alive).length, 3);
    assert.deepEqual(status.leases.map((l) => l.name).sort(), ['audit-prune', 'history-prune', 'history-sample', 'login-throttle-prune', 'stale-presence', 'stranded-tasks', 'task-deadlines', 'unresponsive-presence']);
  });

  it('a fan-out through one manager while another is SIGKILLed: every task ends exactly once, none stuck, devices stay connected', async () => {
    // Followed through the third manager: it must hear of what the other two do.
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const res = await as(0).post<{ taskIds: string[] }>('/api/v1/tasks', {
        operation: { kind: 'vm.create', spec: { name: 'fanout', vcpus: 1, memoryMB: 256, diskGB: 1 } },
        deviceIds: agents.map((a) => a.id),
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const ids = res.body.taskIds;
      assert.equal(ids.length, AGENTS);
      // Mid-way: the tasks are out (each takes a second on its device), no result is in yet.
      await waitFor('tasks sent', async () => (await Promise.all(ids.slice(0, 10).map((id) => task(id, as(0))))).some((t) => t.state !== 'queued'), { timeoutMs: 30_000, intervalMs: 20 });
      await cluster.kill(1);
      const done = await waitFor('every task final', async () => {
        const all = await Promise.all(ids.map((id) => task(id, as(2))));
        return all.every((t) => FINAL.includes(t.state)) && all;
      }, { timeoutMs: 120_000, intervalMs: 500 });
      assert.deepEqual(done.filter((t) => t.state !== 'succeeded').map((t) => `${t.id} ${t.state} ${t.error?.message ?? ''}`), []);
      // On the devices themselves: one VM named fanout, created once.
      for (const a of agents) {
        const sim = simState(a.stateDir);
        assert.equal(sim.vms.filter((v) => v.name === 'fanout').length, 1, `${a.id} has one fanout VM`);
        const vm = sim.vms.find((v) => v.name === 'fanout')!;
        assert.equal(sim.history.filter((h) => h.op === 'createVm' && h.vmId === vm.id).length, 1, `${a.id} created it once`);
      }
      // The kill did not touch the devices' broker connections.
      const offline = stream.events.filter((e): e is Extract<LiveEvent, { type: 'device' }> => e.type === 'device' && e.device.presence === 'offline');
      assert.deepEqual(offline, []);
      assert.ok(stream.events.some((e) => e.type === 'task' && ids.includes(e.task.id) && e.task.state === 'succeeded'), 'C heard the results');
    } finally {
      stream.close();
    }
  });

  it('a killed manager restarted rejoins with no operator action', async () => {
    await cluster.restart(1);
    const status = await waitFor('three managers alive', async () => {
      const s = (await admin.get<ClusterStatus>('/api/v1/cluster')).body;
      return s.managers.filter((m) => m.alive).length === 3 && s;
    }, { timeoutMs: 30_000 });
    assert.equal(status.managers.filter((m) => !m.alive).length, 1, 'the killed process is listed as dead');
    // It serves at once, and knows the devices are online (they never left the broker).
    const page = (await as(1).get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body;
    assert.equal(page.total, AGENTS);
    const a = agents[0]!;
    const t = await as(1).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'after-restart', vcpus: 1, memoryMB: 256, diskGB: 1 });
    assert.equal(t.status, 202);
    const final = await waitFor('task final', async () => { const x = await task(t.body.id); return FINAL.includes(x.state) && x; }, { timeoutMs: 30_000 });
    assert.equal(final.state, 'succeeded');
  });

  it('a fan-out through a manager SIGKILLed while it sends: the others take its tasks over, each runs once', async () => {
    const res = await as(2).post<{ taskIds: string[] }>('/api/v1/tasks', {
      operation: { kind: 'vm.create', spec: { name: 'orphaned', vcpus: 1, memoryMB: 256, diskGB: 1 } },
      deviceIds: agents.map((a) => a.id),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    // At once: some tasks are marked sent by it and maybe not published, others still queued.
    await cluster.kill(2);
    const started = Date.now();
    const done = await waitFor('every task final', async () => {
      const all = await Promise.all(res.body.taskIds.map((id) => task(id, as(0))));
      return all.every((t) => FINAL.includes(t.state)) && all;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    console.log(`# fan-out whose manager was killed while sending: all ${done.length} final ${Date.now() - started} ms after the kill`);
    assert.deepEqual(done.filter((t) => t.state !== 'succeeded').map((t) => `${t.id} ${t.state} ${t.error?.message ?? ''}`), []);
    for (const a of agents) {
      const sim = simState(a.stateDir);
      const vm = sim.vms.filter((v) => v.name === 'orphaned');
      assert.equal(vm.length, 1, `${a.id} has one orphaned VM`);
      assert.equal(sim.history.filter((h) => h.op === 'createVm' && h.vmId === vm[0]!.id).length, 1, `${a.id} created it once`);
    }
    await cluster.restart(2);
  });

  it('an event stream on one manager carries the task and device events caused through another', async () => {
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const a = agents[1]!;
      const res = await as(0).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'seen-on-c', vcpus: 1, memoryMB: 256, diskGB: 1 });
      assert.equal(res.status, 202);
      await waitFor('C sees the task succeed', () => stream.events.some((e) => e.type === 'task' && e.task.id === res.body.id && e.task.state === 'succeeded'), { timeoutMs: 30_000 });
      await waitFor('C sees the inventory change', () => stream.events.some((e) => e.type === 'vms' && e.deviceId === a.id && e.vms.some((v) => v.name === 'seen-on-c')), { timeoutMs: 30_000 });
      const renamed = await as(0).patch<Device>(`/api/v1/devices/${a.id}`, { name: 'renamed-through-a' });
      assert.equal(renamed.status, 200);
    } finally {
      stream.close();
    }
  });

  it('block through one manager cuts the device off within a second; enrollment through another', async () => {
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const a = agents[2]!;
      const started = Date.now();
      const res = await as(0).post(`/api/v1/devices/${a.id}/block`, {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await waitFor('the device is cut off', () => stream.events.some((e) => e.type === 'device' && e.device.id === a.id && e.device.presence === 'offline'), { timeoutMs: 10_000, intervalMs: 20 });
      const cutMs = Date.now() - started;
      console.log(`# block through manager 1 to the device's offline on manager 3's stream: ${cutMs} ms`);
      assert.ok(cutMs < 3_000, `cut off after ${cutMs} ms`);
      // Refused while blocked: a task for it stays queued.
      assert.equal((await admin.get<Device>(`/api/v1/devices/${a.id}`)).body.presence, 'offline');
      await as(1).post(`/api/v1/devices/${a.id}/unblock`, {});
      await online(a.stateDir);
    } finally {
      stream.close();
    }
    const fresh = startAgent('late-joiner', managerUrl(1));
    agents.push({ ...fresh, id: '' });
    const id = await online(fresh.stateDir, as(2));
    agents.at(-1)!.id = id;
  });

  it('a rotated credential replaces the old one on the broker, and the device keeps working', async () => {
    const a = agents[3]!;
    const res = await as(1).post(`/api/v1/devices/${a.id}/rotate-credential`, {});
    assert.ok(res.status === 200 || res.status === 202, JSON.stringify(res.body));
    // The device takes the new credential and reconnects with it; tasks still reach it.
    await waitFor('rotation confirmed', async () => {
      const audit = (await admin.get<{ items: Array<{ action: string; target?: { id: string } }> }>('/api/v1/audit?action=device.credential-rotated')).body;
      return audit.items.some((e) => e.target?.id === a.id);
    }, { timeoutMs: 30_000 });
    await online(a.stateDir);
    const t = await as(2).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'after-rotation', vcpus: 1, memoryMB: 256, diskGB: 1 });
    const final = await waitFor('task final', async () => { const x = await task(t.body.id); return FINAL.includes(x.state) && x; }, { timeoutMs: 30_000 });
    assert.equal(final.state, 'succeeded');
  });
});
