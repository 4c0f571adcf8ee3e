/**
 * Issue #16's test scale: 200 simulated devices in two `pallas-sim` processes, 20 of them (10 %)
 * made to fail VM creation through the sim driver's failure injection (`--fail-on`). A rollout
 * in waves pauses at the error threshold in the wave where it trips and no device of a later
 * wave has received the operation; resume continues to the end; abort skips what was never
 * sent, cancels what is queued and lets the tasks already on devices finish. What each device
 * did is read from its own `sim-host.json`, independently of the manager.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Device, PageOf, Rollout, RolloutDevice, Task } from '@pallas/protocol';
import {
  createEnrollmentToken, startManagerProcess, startNode, BIN, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';

const FAST = 160;
/** Healthy but slow (8 s per operation): their windows can be filled, so a rollout's task to them stays queued. */
const SLOW = 20;
const GOOD = FAST + SLOW;
const BAD = 20;
/** The manager's per-device window of tasks sent and not finished (TaskOutbox DEFAULT_WINDOW). */
const WINDOW = 16;

const deviceIdIn = (stateDir: string): string => (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
/** createVm calls the device's own (simulated) hypervisor saw for VMs of that name, failed ones included. */
const attempts = (stateDir: string, vmName: string): number => {
  const file = join(stateDir, 'sim-host.json');
  if (!existsSync(file)) return 0;
  const state = JSON.parse(readFileSync(file, 'utf8')) as { vms: Array<{ id: string; name: string }>; history: Array<{ op: string; vmId?: string; name?: string }> };
  const ids = new Set(state.vms.filter((v) => v.name === vmName).map((v) => v.id));
  return state.history.filter((h) => h.op === 'createVm' && ((h.vmId !== undefined && ids.has(h.vmId)) || h.name === vmName)).length;
};
const vmCreate = (name: string) => ({ kind: 'vm.create', spec: { name, vcpus: 1, memoryMB: 256, diskGB: 1 } });

describe('staged rollouts at 200 sim devices, 10 % failing', () => {
  let manager: ManagerProcess;
  let admin: Api;
  const dirs = tempDir('pallas-e2e-rollouts-scale-');
  const procs: Proc[] = [];
  const good: Array<{ id: string; dir: string }> = [];
  const bad: Array<{ id: string; dir: string }> = [];
  const slow: Array<{ id: string; dir: string }> = [];
  const started = Date.now();

  const rollout = async (id: string): Promise<Rollout> => (await admin.get<Rollout>(`/api/v1/rollouts/${id}`)).body;
  const entries = async (id: string): Promise<RolloutDevice[]> => (await admin.get<PageOf<RolloutDevice>>(`/api/v1/rollouts/${id}/devices?limit=1000`)).body.items;
  const until = (id: string, what: string, test: (r: Rollout) => boolean, timeoutMs = 90_000) =>
    waitFor(`rollout ${what}`, async () => {
      const r = await rollout(id);
      if (!test(r)) throw new Error(`${r.state}${r.reason ? ` (${r.reason})` : ''}, wave ${r.currentWave}: ${JSON.stringify(r.counts)}`);
      return r;
    }, { timeoutMs });
  const create = async (body: Record<string, unknown>): Promise<Rollout> => {
    const res = await admin.post<Rollout>('/api/v1/rollouts', body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '10', '--status-interval-sec', '30', '--rollout-tick-ms', '200'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: GOOD + BAD });
    for (const [name, n, extra] of [['good', FAST, ['--latency', '300']], ['slow', SLOW, ['--latency', '8000']], ['bad', BAD, ['--latency', '300', '--fail-on', 'createVm=host_error']]] as const) {
      procs.push(startNode(BIN.sim, ['--manager', manager.httpUrl, '--token', token, '--devices', String(n), '--state-dir', join(dirs.path, name), ...extra], { PALLAS_LOG_LEVEL: 'warn' }));
    }
    for (const [list, name, n] of [[good, 'good', FAST], [slow, 'slow', SLOW], [bad, 'bad', BAD]] as const) {
      await waitFor(`${n} ${name} devices enrolled`, () => {
        const root = join(dirs.path, name);
        const ready = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'device.json'))) : [];
        if (ready.length < n) throw new Error(`${ready.length} of ${n}`);
        return true;
      }, { timeoutMs: 120_000 });
      for (let i = 1; i <= n; i++) {
        const dir = join(dirs.path, name, `device-${String(i).padStart(4, '0')}`);
        list.push({ id: deviceIdIn(dir), dir });
      }
    }
    await waitFor('200 devices online', async () => {
      const res = await admin.get<PageOf<Device>>('/api/v1/devices?presence=online&limit=1');
      if (res.body.total < GOOD + BAD) throw new Error(`${res.body.total} online`);
      return true;
    }, { timeoutMs: 120_000 });
    // Names that say what each device is; failing ones sort last within a wave.
    for (const [i, d] of good.entries()) assert.equal((await admin.patch(`/api/v1/devices/${d.id}`, { name: `good-${String(i).padStart(3, '0')}` })).status, 200);
    // Slow ones sort first within a wave, so they are among the first dispatched.
    for (const [i, d] of slow.entries()) assert.equal((await admin.patch(`/api/v1/devices/${d.id}`, { name: `a-slow-${String(i).padStart(2, '0')}` })).status, 200);
    for (const [i, d] of bad.entries()) assert.equal((await admin.patch(`/api/v1/devices/${d.id}`, { name: `zz-bad-${String(i).padStart(2, '0')}` })).status, 200);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await manager?.close();
    dirs.cleanup();
    console.log(`# rollouts-scale: ${GOOD + BAD} devices, ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  });

  it('pauses at the threshold in the wave where it trips, sends nothing to the later wave, resumes to the end', async () => {
    // Wave 1: 20 healthy; wave 2: 46 healthy + 14 failing; wave 3: 94 healthy, 20 slow healthy, 6 failing.
    const w1 = good.slice(0, 20);
    const w2 = [...good.slice(20, 66), ...bad.slice(0, 14)];
    const w3 = [...good.slice(66), ...slow, ...bad.slice(14)];
    // 10 %, from 30 finished on: wave 2 trips it (14 of 80 fail). Wave 3 after the resume cannot:
    // its 6 failing devices sort last, so at least the 60 healthy of its first batch (maxInProgress)
    // finished before them: at most 6 of 66.
    const r = await create({
      name: 'scale-threshold', operation: vmCreate('scale-vm'), deviceIds: [...w1, ...w2, ...w3].map((d) => d.id), waves: { sizes: [20, 60, 120] },
      maxInProgress: 60, successShare: 0.5, errorThreshold: { share: 0.1, minFinished: 30, action: 'pause' },
    });
    const t0 = Date.now();
    const paused = await until(r.id, 'paused', (x) => x.state === 'paused');
    console.log(`# paused after ${Date.now() - t0} ms: ${JSON.stringify(paused.counts)}`);
    assert.equal(paused.reason, 'error_threshold');
    assert.equal(paused.currentWave, 2);
    assert.equal(paused.waves[0]!.counts.succeeded, 20);
    assert.ok(paused.waves[1]!.counts.failed >= 3, JSON.stringify(paused.waves[1]));
    // Let what was sent finish; still nothing of wave 3 anywhere.
    await until(r.id, 'wave 2 drained', (x) => x.counts.active === 0);
    const third = (await entries(r.id)).filter((e) => e.wave === 3);
    assert.equal(third.length, 120);
    assert.ok(third.every((e) => e.state === 'pending' && e.taskId === null), JSON.stringify(third.filter((e) => e.state !== 'pending')));
    // The devices' own record: no wave-3 host saw a createVm of it.
    for (const d of w3) assert.equal(attempts(d.dir, 'scale-vm'), 0, `wave-3 device ${d.id}`);

    const resumed = await admin.post<Rollout>(`/api/v1/rollouts/${r.id}/resume`, { reason: 'the failing hosts are known' });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    const done = await until(r.id, 'completed', (x) => x.state === 'completed', 120_000);
    console.log(`# completed after ${Date.now() - t0} ms: ${JSON.stringify(done.counts)}`);
    assert.deepEqual([done.counts.succeeded, done.counts.failed, done.counts.pending, done.counts.skipped], [GOOD, BAD, 0, 0]);
    // Exactly once on every healthy host.
    for (const d of [...good, ...slow]) assert.equal(attempts(d.dir, 'scale-vm'), 1, `device ${d.id}`);
    assert.ok((await entries(r.id)).filter((e) => e.state === 'failed').every((e) => e.error?.code === 'host_error'));
  });

  it('aborts: what was never sent is skipped, queued tasks are cancelled, tasks on devices finish', async () => {
    // The slow devices' windows full of 8-second tasks: a task sent them now stays queued.
    for (let i = 0; i < WINDOW; i++) {
      const res = await admin.post('/api/v1/tasks', { operation: vmCreate(`filler-${i}`), deviceIds: slow.map((d) => d.id) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
    }
    // maxInProgress 100 over 180 devices: at the abort, wave 2 has tasks running on devices (fast
    // ones), tasks queued (slow ones, sorted first) and entries never sent.
    const all = [...good, ...slow];
    const r = await create({ name: 'scale-abort', operation: vmCreate('scale-abort-vm'), deviceIds: [...good.slice(0, 20), ...slow, ...good.slice(20)].map((d) => d.id), waves: { sizes: [20, 160] }, maxInProgress: 100 });
    await until(r.id, 'in wave 2', (x) => x.currentWave === 2 && x.counts.active > 0);
    const aborted = await admin.post<Rollout>(`/api/v1/rollouts/${r.id}/abort`, { reason: 'enough' });
    assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
    assert.equal(aborted.body.state, 'aborted');
    const end = await until(r.id, 'drained', (x) => x.finishedAt !== null);
    assert.equal(end.counts.active, 0);
    assert.equal(end.counts.succeeded + end.counts.skipped + end.counts.failed, GOOD);
    assert.equal(end.counts.failed, 0);
    assert.ok(end.counts.skipped >= 60, JSON.stringify(end.counts));
    assert.ok(end.counts.succeeded >= 20, JSON.stringify(end.counts));
    const list = await entries(r.id);
    // Every task of the rollout ended: succeeded on its device, or cancelled while still queued.
    const tasks = (await admin.get<PageOf<Task>>('/api/v1/tasks?kind=vm.create&limit=1000')).body.items
      .filter((t) => t.operation.kind === 'vm.create' && t.operation.spec.name === 'scale-abort-vm');
    assert.ok(tasks.every((t) => t.state === 'succeeded' || t.state === 'cancelled'), JSON.stringify(tasks.map((t) => t.state)));
    const cancelled = new Set(tasks.filter((t) => t.state === 'cancelled').map((t) => t.id));
    assert.equal(cancelled.size, SLOW, 'the slow devices\' queued tasks were cancelled');
    for (const d of slow) assert.equal(attempts(d.dir, 'scale-abort-vm'), 0, `slow device ${d.id}`);
    for (const e of list.filter((x) => x.taskId !== null && cancelled.has(x.taskId))) assert.equal(e.state, 'skipped');
    // The devices' own record: exactly the succeeded ones ran it, once each; none after the abort.
    let onHosts = 0;
    for (const d of all) {
      const n = attempts(d.dir, 'scale-abort-vm');
      assert.ok(n <= 1, `device ${d.id} ran it ${n} times`);
      onHosts += n;
    }
    assert.equal(onHosts, end.counts.succeeded);
    console.log(`# abort: ${JSON.stringify(end.counts)}, ${cancelled.size} queued tasks cancelled`);
  });
});
