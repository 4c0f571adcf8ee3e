/**
 * Tasks end to end on the sim driver: a real manager process, real agent processes (journal on
 * disk, sim host state in `<state dir>/sim-host.json`), REST and the live stream. The sim host's
 * file is read here independently of the agent: its `history` lists every change the driver
 * applied, which is how "ran once" is checked.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, openEventStream, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';

interface SimState {
  vms: Vm[];
  history: Array<{ op: string; vmId: string }>;
}
const simState = (stateDir: string): SimState => JSON.parse(readFileSync(join(stateDir, 'sim-host.json'), 'utf8')) as SimState;
const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

describe('tasks on the sim driver, end to end', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  const dirs = tempDir('pallas-e2e-tasks-');
  const agents: Proc[] = [];
  /** Managers killed on purpose: closed at the end to remove their data dirs. */
  const retired: ManagerProcess[] = [];

  const startAgent = (name: string, sim: Record<string, unknown> = {}): { proc: Proc; stateDir: string } => {
    const stateDir = join(dirs.path, name);
    const config = join(dirs.path, `${name}.json`);
    writeFileSync(config, JSON.stringify({ sim: { latencyMs: 20, ...sim } }));
    const proc = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config] });
    agents.push(proc);
    return { proc, stateDir };
  };
  const online = async (stateDir: string): Promise<string> => {
    const id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir));
    await waitFor('device online', async () => (await admin.get(`/api/v1/devices/${id}`)).body?.presence === 'online');
    return id;
  };
  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  const final = (id: string, timeoutMs = 30_000) => waitFor(`task ${id} final`, async () => {
    const t = await task(id);
    return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
  }, { timeoutMs });
  const accepted = async (res: { status: number; body: Task }): Promise<Task> => {
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    // Status every 10 s: an inventory that follows a task within 8 s came with its result, not a report.
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '10'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 20 });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    for (const m of retired) await m.close();
    dirs.cleanup();
  });

  it('creates, powers on and off, updates and deletes a VM; each task walks its states on the live stream', async () => {
    const { stateDir } = startAgent('lifecycle');
    const id = await online(stateDir);
    const stream = await openEventStream(manager.httpUrl, admin.token!, { deviceId: id });
    try {
      const create = await accepted(await admin.post(`/api/v1/devices/${id}/vms`, { name: 'web-1', vcpus: 1, memoryMB: 512, diskGB: 2 }));
      const created = await final(create.id);
      assert.equal(created.state, 'succeeded', JSON.stringify(created.error));
      const vmId = created.vmId!;
      assert.equal(created.vm?.name, 'web-1');
      // The inventory follows at once (the agent reports after every task), not at the next interval.
      await waitFor('VM in the manager\'s inventory', async () => (await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.some((v) => v.id === vmId), { timeoutMs: 8000 });

      const on = await final((await accepted(await admin.post(`/api/v1/devices/${id}/vms/${vmId}/power`, { action: 'on' }))).id);
      assert.equal(on.state, 'succeeded');
      assert.equal(on.vm?.powerState, 'on');
      const off = await final((await accepted(await admin.post(`/api/v1/devices/${id}/vms/${vmId}/power`, { action: 'off' }))).id);
      assert.equal(off.vm?.powerState, 'off');
      const update = await final((await accepted(await admin.patch(`/api/v1/devices/${id}/vms/${vmId}`, { name: 'web-1b', vcpus: 2, memoryMB: 1024 }))).id);
      assert.equal(update.state, 'succeeded');
      assert.deepEqual([update.vm?.name, update.vm?.vcpus, update.vm?.memoryMB], ['web-1b', 2, 1024]);
      const del = await final((await accepted(await admin.delete(`/api/v1/devices/${id}/vms/${vmId}`))).id);
      assert.equal(del.state, 'succeeded');
      await waitFor('VM gone from the inventory', async () => !(await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.some((v) => v.id === vmId));

      // Independently of the agent: the host saw each change exactly once.
      assert.deepEqual(simState(stateDir).history.filter((h) => h.vmId === vmId).map((h) => h.op), ['createVm', 'powerVm', 'powerVm', 'updateVm', 'deleteVm']);
      // And the stream showed every state of every task, in order.
      for (const t of [create.id, on.id, off.id, update.id, del.id]) {
        const states = stream.events.filter((e) => e.type === 'task' && e.task.id === t).map((e) => (e.type === 'task' ? e.task.state : ''));
        // Online and idle: each task was marked sent as it was created (docs/tasks.md).
        assert.deepEqual([...new Set(states)], ['sent', 'running', 'succeeded'], `states of ${t}`);
      }
      assert.ok(stream.events.some((e) => e.type === 'vms' && e.deviceId === id), 'inventory changes on the stream');
    } finally {
      stream.close();
    }
  });

  it('fails a task with the device\'s reason: power on a VM that does not exist, delete a running VM', async () => {
    const { stateDir } = startAgent('errors');
    const id = await online(stateDir);
    const ghost = await final((await accepted(await admin.post(`/api/v1/devices/${id}/vms/vm-999/power`, { action: 'on' }))).id);
    assert.equal(ghost.state, 'failed');
    assert.equal(ghost.error?.code, 'not_found');
    assert.match(ghost.error!.message, /vm-999/);
    const running = (await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.find((v) => v.powerState === 'on')!;
    // The manager refuses it itself (409, docs/tasks.md#checks-before-queuing); forced, the device does.
    assert.equal((await admin.delete(`/api/v1/devices/${id}/vms/${running.id}`)).status, 409);
    const refused = await final((await accepted(await admin.delete(`/api/v1/devices/${id}/vms/${running.id}?force=true`))).id);
    assert.equal(refused.error?.code, 'invalid_state');
    assert.match(refused.error!.message, /power it off first/);
  });

  it('follows a change made by hand on the host', async () => {
    const { stateDir } = startAgent('by-hand');
    const id = await online(stateDir);
    // The sim host writes its file at its first change; make one through Pallas first.
    const t = await final((await accepted(await admin.post(`/api/v1/devices/${id}/vms`, { name: 'touched', vcpus: 1, memoryMB: 256, diskGB: 1 }))).id);
    const state = simState(stateDir);
    const vm = state.vms.find((v) => v.id === t.vmId)!;
    vm.name = 'renamed-on-the-host';
    vm.powerState = 'on';
    writeFileSync(join(stateDir, 'sim-host.json'), JSON.stringify(state));
    await waitFor('manager sees the change', async () => {
      const seen = (await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.find((v) => v.id === t.vmId);
      return seen?.name === 'renamed-on-the-host' && seen.powerState === 'on';
    }, { timeoutMs: 25_000 });
  });

  it('delivers a task created while the device was offline, once, after 1,000 others queued meanwhile', async () => {
    const { proc, stateDir } = startAgent('offline', { latencyMs: 0 });
    const id = await online(stateDir);
    await proc.stop();
    await waitFor('offline', async () => (await admin.get(`/api/v1/devices/${id}`)).body.presence === 'offline');

    const target = await accepted(await admin.post(`/api/v1/devices/${id}/vms`, { name: 'while-away', vcpus: 1, memoryMB: 256, diskGB: 1 }));
    const others: string[] = [];
    // vm-100 is on in every seeded sim host: powering it on again is a no-op that succeeds.
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => admin.post<Task>(`/api/v1/devices/${id}/vms/vm-100/power`, { action: 'on' })));
      others.push(...batch.map((r) => r.body.id));
    }
    const queued = await admin.get<{ total: number }>(`/api/v1/tasks?deviceId=${id}&state=queued&limit=1`);
    assert.equal(queued.body.total, 1001);

    agents.push(startAgentProcess({ managerUrl: manager.httpUrl, stateDir, args: ['--config', join(dirs.path, 'offline.json')] }));
    const done = await final(target.id);
    assert.equal(done.state, 'succeeded');
    await waitFor('all 1,001 tasks succeeded', async () => {
      const res = await admin.get<{ total: number }>(`/api/v1/tasks?deviceId=${id}&state=succeeded&limit=1`);
      return res.body.total === 1001;
    }, { timeoutMs: 120_000 });
    const history = simState(stateDir).history.filter((h) => h.op === 'createVm');
    assert.equal(history.length, 1, 'created once');
    assert.equal(simState(stateDir).vms.filter((v) => v.name === 'while-away').length, 1);
  });

  it('loses no task and runs none twice when the agent is killed mid-task', async () => {
    const { proc, stateDir } = startAgent('agent-crash', { latencyMs: { createVm: 3000 } });
    const id = await online(stateDir);
    const t = await accepted(await admin.post(`/api/v1/devices/${id}/vms`, { name: 'survivor', vcpus: 1, memoryMB: 256, diskGB: 1 }));
    // `running` comes from the agent's first progress, sent while the task's journal record is
    // synced: the kill lands after that record (the restart resumes the task) or, rarely, before
    // it (the manager re-sends the running task and it runs then). Once, either way.
    await waitFor('running', async () => (await task(t.id)).state === 'running');
    await proc.kill();
    agents.push(startAgentProcess({ managerUrl: manager.httpUrl, stateDir, args: ['--config', join(dirs.path, 'agent-crash.json')] }));
    const done = await final(t.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    const state = simState(stateDir);
    assert.equal(state.vms.filter((v) => v.name === 'survivor').length, 1);
    assert.equal(state.history.filter((h) => h.op === 'createVm').length, 1);
  });

  it('loses no task and runs none twice when the manager is killed between sent and the result', async () => {
    const { stateDir } = startAgent('manager-crash', { latencyMs: { createVm: 2000 } });
    const id = await online(stateDir);
    const t = await accepted(await admin.post(`/api/v1/devices/${id}/vms`, { name: 'across-restart', vcpus: 1, memoryMB: 256, diskGB: 1 }));
    // Sent, and received: the agent journals a task before it acts on it. (Marked sent comes
    // just before the publish, so a kill right after seeing it could beat the command out.)
    await waitFor('sent and received', async () => ['sent', 'running'].includes((await task(t.id)).state)
      && existsSync(join(stateDir, 'tasks.journal')) && readFileSync(join(stateDir, 'tasks.journal'), 'utf8').includes(t.id));
    const ports = { http: new URL(manager.httpUrl).port, mqtt: String(manager.mqttPort) };
    const killed = manager;
    retired.push(killed);
    await killed.kill();
    // The agent finishes while the manager is down: its result waits, unacknowledged, in the journal.
    await waitFor('VM created on the host', () => existsSync(join(stateDir, 'sim-host.json')) && simState(stateDir).vms.some((v) => v.name === 'across-restart'), { timeoutMs: 10_000 });
    manager = await startManagerProcess({
      dataDir: killed.dataDir,
      database: { url: killed.databaseUrl },
      args: ['--keepalive-sec', '5', '--status-interval-sec', '10', '--http-port', ports.http, '--mqtt-port', ports.mqtt],
    });
    admin = await manager.admin();
    const done = await final(t.id, 60_000);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.vm?.name, 'across-restart');
    assert.equal(simState(stateDir).history.filter((h) => h.op === 'createVm').length, 1);
  });
});
