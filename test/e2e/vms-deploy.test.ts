/**
 * `vm.deploy` end to end: a real manager, a real agent process, an OVA built here (OVF with
 * 2 vCPUs and 512 MB, a streamOptimized VMDK from qemu-img) that the agent reads from its own
 * disk. REST and the CLI, on the sim driver.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, openEventStream, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { buildOva, ovaSkipReason } from '../../packages/agent/test/support/ova-builder.js';

const deviceIdIn = (stateDir: string): string => (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

describe('vm.deploy from an OVA on the device (sim driver)', { skip: skipUnless(ovaSkipReason) }, () => {
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  const dirs = tempDir('pallas-e2e-deploy-');
  const agents: Proc[] = [];

  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  const final = (id: string) => waitFor(`task ${id} final`, async () => {
    const t = await task(id);
    return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
  }, { timeoutMs: 60_000 });

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '2'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 5 });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('deploys through REST: the VM has the OVF\'s vCPUs and memory; the task reports progress; bad sources fail clearly', async () => {
    const { path: ova } = await buildOva(dirs.path, { name: 'tiny-appliance', vcpus: 2, memoryMB: 512, diskMiB: 64, dataMiB: 16 });
    const stateDir = join(dirs.path, 'agent');
    const config = join(dirs.path, 'agent.json');
    // createVm latency spreads the last steps, so the stream sees the task running; reports at
    // most every 250 ms (the agent's default is 1 s), so one of those steps goes out.
    writeFileSync(config, JSON.stringify({ progressIntervalMs: 250, sim: { latencyMs: { createVm: 800 } } }));
    agents.push(startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config] }));
    const id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir));
    await waitFor('device online', async () => (await admin.get(`/api/v1/devices/${id}`)).body?.presence === 'online');
    const stream = await openEventStream(manager.httpUrl, admin.token!, { deviceId: id });
    try {
      const res = await admin.post<Task>(`/api/v1/devices/${id}/vms/deploy`, { source: { kind: 'file', path: ova } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.kind, 'vm.deploy');
      const done = await final(res.body.id);
      assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
      assert.deepEqual([done.vm?.name, done.vm?.vcpus, done.vm?.memoryMB, done.vm?.powerState], ['tiny-appliance', 2, 512, 'off']);
      assert.equal(done.vmId, done.vm?.id);
      await waitFor('VM in the inventory', async () => (await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.some((v) => v.id === done.vmId && v.vcpus === 2 && v.memoryMB === 512));
      const progress = stream.events.flatMap((e) => (e.type === 'task' && e.task.id === done.id && e.task.state === 'running' ? [e.task.progress.pct] : []));
      assert.ok(progress.some((p) => p > 0 && p < 100), `progress reported while running: ${progress.join(',')}`);

      // A name given with the task wins over the OVF's.
      const named = await final((await admin.post<Task>(`/api/v1/devices/${id}/vms/deploy`, { name: 'edge-fw', source: { kind: 'file', path: ova } })).body.id);
      assert.equal(named.vm?.name, 'edge-fw');
      // The OVF's name is taken now: a clear refusal, not a second VM.
      const dup = await final((await admin.post<Task>(`/api/v1/devices/${id}/vms/deploy`, { source: { kind: 'file', path: ova } })).body.id);
      assert.equal(dup.state, 'failed');
      assert.equal(dup.error?.code, 'invalid_spec');
      assert.match(dup.error!.message, /tiny-appliance/);
      // A file that is not on the device.
      const missing = await final((await admin.post<Task>(`/api/v1/devices/${id}/vms/deploy`, { source: { kind: 'file', path: '/nowhere/x.ova' } })).body.id);
      assert.equal(missing.error?.code, 'invalid_spec');
      assert.match(missing.error!.message, /\/nowhere\/x\.ova: no such file on the device/);
    } finally {
      stream.close();
    }
    // Bad requests never become tasks.
    const relative = await admin.post(`/api/v1/devices/${id}/vms/deploy`, { source: { kind: 'file', path: 'x.ova' } });
    assert.equal(relative.status, 400);
    assert.ok(relative.body.error?.code);
    const unknownKind = await admin.post(`/api/v1/devices/${id}/vms/deploy`, { source: { kind: 'artifact', id: 'a1' } });
    assert.equal(unknownKind.status, 400);
  });
});
