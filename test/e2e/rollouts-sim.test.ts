/**
 * Groups and staged rollouts end to end: a real manager process and real agents on the sim
 * driver — two `pallas-sim` processes (16 healthy devices, and 4 whose hypervisor fails every
 * VM creation through the sim driver's failure injection) and one `pallas-agent` process that
 * goes offline. What each host did is read from its own `sim-host.json`, independently of the
 * manager: that is how "no device received the operation twice" is checked.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry, Device, Group, PageOf, Rollout, RolloutDevice, Task } from '@pallas/protocol';
import { pallas } from './support/cli.js';
import {
  BIN, createEnrollmentToken, startAgentProcess, startManagerProcess, startNode, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';

const deviceIdIn = (stateDir: string): string => (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
const created = (stateDir: string, vmName: string): number => {
  const file = join(stateDir, 'sim-host.json');
  if (!existsSync(file)) return 0;
  const state = JSON.parse(readFileSync(file, 'utf8')) as { vms: Array<{ id: string; name: string }>; history: Array<{ op: string; vmId: string }> };
  const ids = new Set(state.vms.filter((v) => v.name === vmName).map((v) => v.id));
  return state.history.filter((h) => h.op === 'createVm' && ids.has(h.vmId)).length;
};
const vmCreate = (name: string) => ({ kind: 'vm.create', spec: { name, vcpus: 1, memoryMB: 256, diskGB: 1 } });
const ok = async <T>(p: Promise<{ status: number; body: T }>): Promise<T> => {
  const res = await p;
  assert.ok(res.status < 300, JSON.stringify(res.body));
  return res.body;
};
const MANAGER_ARGS = ['--keepalive-sec', '5', '--status-interval-sec', '10', '--rollout-tick-ms', '200'];

describe('groups and staged rollouts on sim devices', () => {
  let manager: ManagerProcess;
  let admin: Api;
  const dirs = tempDir('pallas-e2e-rollouts-');
  const procs: Proc[] = [];
  const retired: ManagerProcess[] = [];
  /** Healthy and failing devices: id → state dir. */
  const good: Array<{ id: string; dir: string }> = [];
  const bad: Array<{ id: string; dir: string }> = [];

  const sim = (name: string, devices: number, token: string, extra: string[] = []): Proc => {
    const p = startNode(BIN.sim, ['--manager', manager.httpUrl, '--token', token, '--devices', String(devices), '--state-dir', join(dirs.path, name), '--latency', '300', ...extra], { PALLAS_LOG_LEVEL: 'warn' });
    procs.push(p);
    return p;
  };
  const rollout = async (id: string): Promise<Rollout> => (await admin.get<Rollout>(`/api/v1/rollouts/${id}`)).body;
  const entries = async (id: string): Promise<RolloutDevice[]> => (await admin.get<PageOf<RolloutDevice>>(`/api/v1/rollouts/${id}/devices?limit=1000`)).body.items;
  const until = (id: string, what: string, test: (r: Rollout) => boolean, timeoutMs = 60_000) =>
    waitFor(`rollout ${what}`, async () => {
      const r = await rollout(id);
      // Thrown, not returned: on a timeout waitFor reports the last state seen.
      if (!test(r)) throw new Error(`${r.state}${r.reason ? ` (${r.reason})` : ''}, wave ${r.currentWave}: ${JSON.stringify(r.counts)}`);
      return r;
    }, { timeoutMs });
  const create = async (body: Record<string, unknown>): Promise<Rollout> => {
    const res = await admin.post<Rollout>('/api/v1/rollouts', body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    manager = await startManagerProcess({ args: MANAGER_ARGS });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 30 });
    sim('good', 16, token);
    sim('bad', 4, token, ['--fail-on', 'createVm=host_error']);
    for (const [list, name, n] of [[good, 'good', 16], [bad, 'bad', 4]] as const) {
      for (let i = 1; i <= n; i++) {
        const dir = join(dirs.path, name, `device-${String(i).padStart(4, '0')}`);
        const id = await waitFor(`${name} ${i} enrolled`, () => existsSync(join(dir, 'device.json')) && deviceIdIn(dir), { timeoutMs: 60_000 });
        await waitFor(`${name} ${i} known to the manager`, async () => (await admin.get(`/api/v1/devices/${id}`)).status === 200, { timeoutMs: 60_000 });
        list.push({ id, dir });
      }
    }
    // Names that say what each device is; failing ones sort last within a wave.
    for (const [i, d] of good.entries()) await ok(admin.patch(`/api/v1/devices/${d.id}`, { name: `good-${String(i).padStart(2, '0')}`, tags: ['fleet=e2e', i < 4 ? 'ring=canary' : 'ring=main'] }));
    for (const [i, d] of bad.entries()) await ok(admin.patch(`/api/v1/devices/${d.id}`, { name: `zz-bad-${i}`, tags: ['fleet=e2e', 'ring=main'] }));
    await waitFor('20 devices online', async () => {
      const res = await admin.get<PageOf<Device>>('/api/v1/devices?presence=online&limit=100');
      if (res.body.items.filter((d) => d.tags.includes('fleet=e2e')).length === 20) return true;
      throw new Error(`${res.body.total} online: ${procs.map((p) => p.output().slice(-300)).join(' | ')}`);
    }, { timeoutMs: 60_000 });
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await manager?.close();
    for (const m of retired) await m.close();
    dirs.cleanup();
  });

  it('groups: a saved query and a fixed list, their counts and members, as a task target', async () => {
    const canary = await admin.post<Group>('/api/v1/groups', { name: 'canary', query: { tags: ['fleet=e2e', 'ring=canary'], hypervisor: 'sim' } });
    assert.equal(canary.status, 201, JSON.stringify(canary.body));
    assert.equal(canary.body.deviceCount, 4);
    const byName = await admin.post<Group>('/api/v1/groups', { name: 'bad-ones', query: { namePattern: 'ZZ-BAD-*', presence: 'online' } });
    assert.equal(byName.body.deviceCount, 4);
    const fixed = await admin.post<Group>('/api/v1/groups', { name: 'two', deviceIds: [good[0]!.id, bad[0]!.id] });
    assert.equal(fixed.body.kind, 'static');
    const members = (await admin.get<PageOf<Device>>('/api/v1/groups/two/devices')).body;
    assert.deepEqual(members.items.map((d) => d.name), ['good-00', 'zz-bad-0']);
    const version = (await admin.get<Device>(`/api/v1/devices/${good[0]!.id}`)).body.facts!.agentVersion;
    assert.equal((await admin.post<Group>('/api/v1/groups', { name: 'by-version', query: { agentVersion: version, tags: ['fleet=e2e'] } })).body.deviceCount, 20);
    // A device that starts matching is a member from then on.
    await admin.patch(`/api/v1/devices/${good[4]!.id}`, { tags: ['fleet=e2e', 'ring=canary'] });
    assert.equal((await admin.get<Group>(`/api/v1/groups/${canary.body.id}`)).body.deviceCount, 5);
    await admin.patch(`/api/v1/devices/${good[4]!.id}`, { tags: ['fleet=e2e', 'ring=main'] });
    // Bad input: both kinds at once, an empty query, a duplicate name, an unknown device.
    assert.equal((await admin.post('/api/v1/groups', { name: 'x', deviceIds: [good[0]!.id], query: { presence: 'online' } })).status, 400);
    assert.equal((await admin.post('/api/v1/groups', { name: 'x', query: {} })).status, 400);
    assert.equal((await admin.post('/api/v1/groups', { name: 'canary', query: { presence: 'online' } })).status, 409);
    assert.equal((await admin.post('/api/v1/groups', { name: 'y', deviceIds: ['00000000-0000-4000-8000-000000000000'] })).status, 400);
    // As a task target: vm-100 is on in every seeded sim host, so powering it on succeeds at once.
    const bulk = await admin.post<{ count: number; taskIds: string[] }>('/api/v1/tasks', { operation: { kind: 'vm.power', vmId: 'vm-100', action: 'on' }, groupId: canary.body.id });
    assert.equal(bulk.status, 202, JSON.stringify(bulk.body));
    assert.equal(bulk.body.count, 4);
  });

  it('pauses at the error threshold in the wave where it trips, sends nothing to later waves, and resumes to the end', async () => {
    // Wave 1: 4 healthy; wave 2: 2 healthy and 2 failing; wave 3: 10 healthy and 2 failing.
    const order = [...good.slice(0, 4), ...good.slice(4, 6), bad[0]!, bad[1]!, ...good.slice(6), bad[2]!, bad[3]!].map((d) => d.id);
    const stream = await import('@pallas/testkit').then((t) => t.openEventStream(manager.httpUrl, admin.token!, {}));
    const r = await create({
      name: 'threshold', operation: vmCreate('wave-vm'), deviceIds: order, waves: { sizes: [4, 4, 12] },
      // 25 %: wave 2 trips it (2 of at most 8 finished); wave 3 cannot (its failing devices sort
      // last, so at least 8 of its 10 healthy ones finished before them: at most 2 of 10).
      maxInProgress: 4, successShare: 0.5, errorThreshold: { share: 0.25, minFinished: 5, action: 'pause' },
    });
    assert.deepEqual(r.waves.map((w) => w.size), [4, 4, 12]);
    const paused = await until(r.id, 'paused', (x) => x.state === 'paused');
    assert.equal(paused.reason, 'error_threshold');
    assert.equal(paused.currentWave, 2);
    assert.equal(paused.waves[1]!.counts.failed, 2);
    // Nothing of wave 3 was sent: no task, and no VM on its hosts.
    const third = (await entries(r.id)).filter((e) => e.wave === 3);
    assert.equal(third.length, 12);
    assert.ok(third.every((e) => e.state === 'pending' && e.taskId === null), JSON.stringify(third));
    for (const d of good.slice(6)) assert.equal(created(d.dir, 'wave-vm'), 0);
    // The trip is audited, by the engine, with why.
    const audit = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?action=rollout.threshold-tripped')).body.items;
    assert.ok(audit.some((a) => a.target?.id === r.id && a.actor.kind === 'system'), JSON.stringify(audit));

    const resumed = await admin.post<Rollout>(`/api/v1/rollouts/${r.id}/resume`, { reason: 'the two failures are known hosts' });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    const done = await until(r.id, 'completed', (x) => x.state === 'completed', 90_000);
    assert.deepEqual([done.counts.succeeded, done.counts.failed, done.counts.pending], [16, 4]
      .concat([0]));
    const failedOnes = (await entries(r.id)).filter((e) => e.state === 'failed');
    assert.deepEqual(failedOnes.map((e) => e.error?.code), ['host_error', 'host_error', 'host_error', 'host_error']);
    // Exactly once on every healthy host.
    for (const d of good) assert.equal(created(d.dir, 'wave-vm'), 1, `device ${d.id}`);
    // Progress went out on the event stream.
    await waitFor('rollout events', () => stream.events.some((e) => e.type === 'rollout' && e.rollout.id === r.id && e.rollout.state === 'completed'));
    stream.close();
    const actions = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?action=rollout.')).body.items.filter((a) => a.target?.id === r.id).map((a) => a.action);
    assert.ok(actions.includes('rollout.create') && actions.includes('rollout.resume'), actions.join());
  });

  it('refuses bad input whole: empty target, wrong artifact, out-of-range threshold, a device in another open rollout', async () => {
    const empty = await admin.post<Group>('/api/v1/groups', { name: 'nobody', query: { namePattern: 'no-such-device-*' } });
    const cases: Array<[Record<string, unknown>, number]> = [
      [{ name: 'e', operation: vmCreate('e'), groupId: empty.body.id }, 400],
      [{ name: 'a', operation: { kind: 'agent.update', artifactId: 'art_doesnotexist' }, tag: 'fleet=e2e' }, 400],
      [{ name: 't', operation: vmCreate('t'), tag: 'fleet=e2e', errorThreshold: { share: 1.5 } }, 400],
      [{ name: 'w', operation: vmCreate('w'), tag: 'fleet=e2e', waves: { sizes: ['150%'] } }, 400],
      [{ name: 'd', operation: vmCreate('d'), deviceIds: [good[0]!.id], membership: 'dynamic' }, 400],
    ];
    for (const [body, status] of cases) assert.equal((await admin.post('/api/v1/rollouts', body)).status, status, JSON.stringify(body));
    // good[0] waits in the second wave, which cannot start for an hour (the first wave's
    // soak) or at all (its gate missed): open whatever good[2] answers, and however fast.
    // (With good[0] in the first wave, its task could fail before the clash below was asked,
    // and a device whose task ended is no longer in the rollout: the clash was created.)
    const first = await create({ name: 'hold', operation: { kind: 'vm.power', vmId: 'vm-999', action: 'on' }, deviceIds: [good[2]!.id, good[0]!.id], waves: { sizes: [1, 1] }, soakSec: 3600 });
    await admin.post(`/api/v1/rollouts/${first.id}/pause`, {});
    const before = (await admin.get<PageOf<Rollout>>('/api/v1/rollouts?limit=1')).body.total;
    const clash = await admin.post('/api/v1/rollouts', { name: 'clash', operation: { kind: 'vm.power', vmId: 'vm-100', action: 'off' }, deviceIds: [good[1]!.id, good[0]!.id] });
    assert.equal(clash.status, 409, JSON.stringify(clash.body));
    assert.equal((await admin.get<PageOf<Rollout>>('/api/v1/rollouts?limit=1')).body.total, before, 'nothing half-created');
    await admin.post(`/api/v1/rollouts/${first.id}/abort`, { reason: 'test done' });
  });

  it('keeps an offline device pending (not failed) and sends it the operation when it returns', async () => {
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const dir = join(dirs.path, 'away');
    let agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir: dir, token });
    procs.push(agent);
    const id = await waitFor('away enrolled', () => existsSync(join(dir, 'device.json')) && deviceIdIn(dir));
    await waitFor('away online', async () => (await admin.get<Device>(`/api/v1/devices/${id}`)).body.presence === 'online');
    await agent.stop();
    await waitFor('away offline', async () => (await admin.get<Device>(`/api/v1/devices/${id}`)).body.presence === 'offline');
    const r = await create({ name: 'offline', operation: vmCreate('late-vm'), deviceIds: [good[0]!.id, id, good[1]!.id], waves: { sizes: [3] }, successShare: 0.5 });
    await until(r.id, 'the online devices done', (x) => x.counts.succeeded === 2);
    // The barrier: a witness rollout created now completes only in a tick after the one that
    // started it, and ticks never overlap; the tick that started it began after this point and
    // advanced every open rollout, this one (created earlier, so first) included.
    const witness = await create({ name: 'offline-witness', operation: vmCreate('offline-witness-vm'), deviceIds: [good[2]!.id], waves: { sizes: [1] } });
    await until(witness.id, 'the witness completed', (x) => x.state === 'completed');
    const waiting = await rollout(r.id);
    assert.equal(waiting.state, 'running');
    assert.deepEqual([waiting.counts.pending, waiting.counts.failed], [1, 0]);
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir: dir });
    procs.push(agent);
    const done = await until(r.id, 'completed', (x) => x.state === 'completed');
    assert.equal(done.counts.succeeded, 3);
    assert.equal(created(dir, 'late-vm'), 1);
  });

  it('aborts: devices without a task are skipped, tasks on devices finish, nothing new is sent', async () => {
    const r = await create({ name: 'abort', operation: vmCreate('abort-vm'), deviceIds: good.map((d) => d.id), waves: { sizes: [2, 14] }, maxInProgress: 2 });
    await until(r.id, 'in wave 2', (x) => x.currentWave === 2 && x.counts.active > 0);
    const aborted = await admin.post<Rollout>(`/api/v1/rollouts/${r.id}/abort`, { reason: 'enough' });
    assert.equal(aborted.body.state, 'aborted');
    const end = await until(r.id, 'drained', (x) => x.finishedAt !== null);
    assert.equal(end.counts.active, 0);
    assert.equal(end.counts.succeeded + end.counts.skipped + end.counts.failed, 16);
    assert.ok(end.counts.skipped >= 10, JSON.stringify(end.counts));
    const sent = (await entries(r.id)).filter((e) => e.taskId !== null).length;
    assert.equal(sent, end.counts.succeeded + end.counts.failed);
    let onHosts = 0;
    for (const d of good) onHosts += created(d.dir, 'abort-vm');
    assert.equal(onHosts, end.counts.succeeded);
  });

  it('pallas groups and pallas rollouts: create, show, dry run, watch to the end, --json', async () => {
    const env = { PALLAS_SERVER: manager.httpUrl, PALLAS_TOKEN: admin.token! };
    const cli = (args: string[]) => pallas(join(dirs.path, 'cli'), args, env);
    const group = await cli(['groups', 'create', 'cli-main', '--tag', 'ring=main', '--name-pattern', 'good-*', '--json']);
    assert.equal(group.code, 0, group.stderr);
    assert.equal((JSON.parse(group.stdout) as Group).deviceCount, 12);
    const ls = await cli(['groups', 'ls']);
    assert.match(ls.stdout, /cli-main\s+12\s+query/);
    const plan = await cli(['rollouts', 'create', 'dry', '--group', 'cli-main', '--power', 'vm-100:on', '--waves', '1,25%', '--dry-run']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /12 devices in 5 waves: 1, 3, 3, 3, 2/);
    const made = await cli(['rollouts', 'create', 'cli', '--group', 'cli-main', '--power', 'vm-100:on', '--ramp', '2,2', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const id = (JSON.parse(made.stdout) as Rollout).id;
    const watched = await cli(['rollouts', 'watch', id]);
    assert.equal(watched.code, 0, watched.stderr + watched.stdout);
    assert.match(watched.stdout, /State:\s+completed/);
    assert.match(watched.stdout, /WAVE\s+SIZE\s+PROGRESS/);
    const show = await cli(['rollouts', 'show', id, '--devices', '--json']);
    assert.equal((JSON.parse(show.stdout) as { devices: RolloutDevice[] }).devices.filter((d) => d.state === 'succeeded').length, 12);
    const abortDone = await cli(['rollouts', 'abort', id, '--reason', 'already done']);
    assert.equal(abortDone.code, 1);
    assert.match(abortDone.stderr, /completed/);
  });

  it('continues after the manager is killed mid-rollout, and no device receives the operation twice', async () => {
    const r = await create({ name: 'restart', operation: vmCreate('restart-vm'), deviceIds: good.map((d) => d.id), waves: { sizes: [4, 4, 8] }, maxInProgress: 3 });
    await until(r.id, 'in wave 2', (x) => x.currentWave === 2 && x.counts.active > 0);
    const ports = { http: new URL(manager.httpUrl).port, mqtt: String(manager.mqttPort) };
    const killed = manager;
    retired.push(killed);
    await killed.kill();
    manager = await startManagerProcess({ dataDir: killed.dataDir, database: { url: killed.databaseUrl }, args: [...MANAGER_ARGS, '--http-port', ports.http, '--mqtt-port', ports.mqtt] });
    admin = await manager.admin();
    const done = await until(r.id, 'completed after the restart', (x) => x.state === 'completed', 120_000);
    assert.equal(done.counts.succeeded, 16);
    for (const d of good) assert.equal(created(d.dir, 'restart-vm'), 1, `device ${d.id}`);
    const tasks = (await admin.get<PageOf<Task>>('/api/v1/tasks?kind=vm.create&limit=1000')).body.items.filter((t) => t.operation.kind === 'vm.create' && t.operation.spec.name === 'restart-vm');
    assert.equal(tasks.length, 16, 'one task per device');
  });
});
