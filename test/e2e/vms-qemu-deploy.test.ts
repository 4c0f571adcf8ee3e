/**
 * `vm.deploy` on the qemu driver end to end: a real manager, a real `pallas-agent --driver
 * qemu`, an OVA built here (OVF with the test's vCPUs and 192 MB, a streamOptimized VMDK) that
 * the agent reads from its own disk (`{kind: 'file'}`). Deployed and powered on through REST;
 * then QEMU is checked without the agent: its process found by scanning /proc for the VM's
 * folder, `-m` on its command line, its disk with `qemu-img info`.
 *
 * Needs QEMU, qemu-img and tar: skipped without them on a partial run, failed under CI and
 * npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import { createEnrollmentToken, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc } from '@pallas/testkit';
import { buildOva } from '../../packages/agent/test/support/ova-builder.js';
import { argAfter, killQemusUnder, qemuSkipReason, qemusMentioning } from '../../packages/agent/test/support/qemu-outside.js';

const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';
const MiB = 2 ** 20;

describe('vm.deploy from an OVA file on the qemu driver, end to end', { timeout: 240_000, skip: skipUnless(qemuSkipReason) }, () => {
  let manager: ManagerProcess;
  let admin: Api;
  let agent: Proc;
  let deviceId: string;
  const dirs = tempDir('pallas-e2e-qemu-deploy-');
  // Short and under /tmp: QMP socket paths must fit in 107 bytes.
  let root: string | undefined;
  const qemuDir = () => join(root!, 'vms');
  const vcpus = Math.min(2, os.cpus().length);

  before(async () => {
    root = mkdtempSync('/tmp/pqe-');
    manager = await startManagerProcess({ args: ['--status-interval-sec', '2'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const stateDir = join(dirs.path, 'agent');
    const config = join(dirs.path, 'agent.json');
    writeFileSync(config, JSON.stringify({ qemu: { accel } }));
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--driver', 'qemu', '--qemu-dir', qemuDir(), '--config', config] });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('online', async () => (await admin.get(`/api/v1/devices/${deviceId}`)).body?.presence === 'online', { timeoutMs: 30_000 });
  });
  after(async () => {
    await agent?.kill();
    if (root) killQemusUnder(root);
    await manager?.close();
    if (root) rmSync(root, { recursive: true, force: true });
    dirs.cleanup();
  });

  const final = (id: string) => waitFor(`task ${id} final`, async () => {
    const t = (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
    return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
  }, { timeoutMs: 120_000 });

  it('deploys through REST; powered on, the QEMU process has the OVF\'s memory and vCPUs and the converted qcow2', async () => {
    const { path: ova } = await buildOva(dirs.path, { name: 'qemu-appliance', vcpus, memoryMB: 192, diskMiB: 64, dataMiB: 8 });
    const vms = `/api/v1/devices/${deviceId}/vms`;
    const res = await admin.post<Task>(`${vms}/deploy`, { source: { kind: 'file', path: ova } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await final(res.body.id);
    assert.equal(done.state, 'succeeded', `${JSON.stringify(done.error)}\n${agent.output().slice(-2000)}`);
    assert.deepEqual([done.vm?.name, done.vm?.vcpus, done.vm?.memoryMB, done.vm?.powerState], ['qemu-appliance', vcpus, 192, 'off']);
    const vmId = done.vmId!;
    const folder = join(qemuDir(), vmId);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(folder, 'disk.qcow2')], { encoding: 'utf8' })) as { format: string; 'virtual-size': number };
    assert.deepEqual([info.format, info['virtual-size']], ['qcow2', 64 * MiB]);
    await waitFor('the VM in the inventory', async () => (await admin.get<Vm[]>(vms)).body.some((v) => v.id === vmId && v.memoryMB === 192));

    const on = await final((await admin.post<Task>(`${vms}/${vmId}/power`, { action: 'on' })).body.id);
    assert.equal(on.state, 'succeeded', JSON.stringify(on.error));
    const procs = [...qemusMentioning(folder).values()];
    assert.equal(procs.length, 1, 'one QEMU serves the VM');
    const argv = procs[0]!;
    assert.equal(argAfter(argv, '-m'), '192M', `the OVF's memory: ${argv.join(' ')}`);
    assert.equal(argAfter(argv, '-smp'), String(vcpus));
    assert.ok(argv.some((a) => a.includes(join(folder, 'disk.qcow2'))));
    await waitFor('on in the inventory', async () => (await admin.get<Vm[]>(vms)).body.some((v) => v.id === vmId && v.powerState === 'on'));

    // The name is taken now: a clear refusal, not a second VM.
    const dup = await final((await admin.post<Task>(`${vms}/deploy`, { source: { kind: 'file', path: ova } })).body.id);
    assert.equal(dup.state, 'failed');
    assert.equal(dup.error?.code, 'invalid_spec');
    assert.match(dup.error!.message, /qemu-appliance/);

    const off = await final((await admin.post<Task>(`${vms}/${vmId}/power`, { action: 'off' })).body.id);
    assert.equal(off.state, 'succeeded', JSON.stringify(off.error));
    assert.equal(qemusMentioning(folder).size, 0, 'QEMU stopped');
    const del = await final((await admin.delete<Task>(`${vms}/${vmId}`)).body.id);
    assert.equal(del.state, 'succeeded', JSON.stringify(del.error));
    assert.equal(existsSync(folder), false, 'the folder and its disk are gone');
  });
});
