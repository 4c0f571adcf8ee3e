/**
 * Deploy from an OVA artifact on every driver, end to end (issue #5, acceptance 6): an OVA
 * built here is uploaded with the real CLI (`pallas artifacts upload --kind ova`); three real
 * agents — `sim`, `qemu` and `esxi` (against vcsim) — each get a REST
 * `POST /devices/{id}/vms/deploy {"source": {"kind": "artifact", "artifactId": …}}`, download
 * the artifact over the signed URL of their task, verify it and deploy it. Each VM is then
 * powered on through REST and checked from outside the agent: sim through the manager's
 * inventory, qemu through the QEMU process's command line (`-m` = the OVF's memory), esxi with
 * the govmomi query tool.
 *
 * Needs QEMU, qemu-img, tar and Go/govmomi: skipped without them on a partial run, failed
 * under CI and npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import { ADMIN_PASSWORD, createEnrollmentToken, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc } from '@pallas/testkit';
import { buildOva } from '../../packages/agent/test/support/ova-builder.js';
import { argAfter, killQemusUnder, qemuSkipReason, qemusMentioning } from '../../packages/agent/test/support/qemu-outside.js';
import { Vcsim, vcsimSkipReason } from '../../packages/agent/test/support/vcsim/vcsim.js';
import { pallas } from './support/cli.js';

const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
const NAME = 'artifact-appliance';
const MEMORY_MB = 192;

describe('deploy from an OVA artifact on sim, qemu and esxi, end to end', { timeout: 600_000, skip: skipUnless(qemuSkipReason, vcsimSkipReason) }, () => {
  let sim: Vcsim;
  let manager: ManagerProcess;
  let admin: Api;
  let artifactId: string;
  const agents: Proc[] = [];
  const devices: Record<'sim' | 'qemu' | 'esxi', string> = { sim: '', qemu: '', esxi: '' };
  const dirs = tempDir('pallas-e2e-artifact-deploy-');
  const cliConfig = join(dirs.path, 'cli');
  // Short and under /tmp: QMP socket paths must fit in 107 bytes.
  let root: string | undefined;
  const qemuDir = () => join(root!, 'vms');
  const vcpus = Math.min(2, os.cpus().length);

  const final = (id: string): Promise<Task> => waitFor(`task ${id} final`, async () => {
    const t = (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
    return FINAL.includes(t.state) && t;
  }, { timeoutMs: 180_000 });

  const startAgent = async (kind: 'sim' | 'qemu' | 'esxi', token: string, config: object, args: string[]): Promise<string> => {
    const stateDir = join(dirs.path, `agent-${kind}`);
    const file = join(dirs.path, `agent-${kind}.json`);
    writeFileSync(file, JSON.stringify(config));
    // Over HTTPS with the manager's CA, as a device would: the task's download URL is the manager's.
    agents.push(startAgentProcess({ managerUrl: manager.httpsUrl, stateDir, token, args: ['--ca', manager.caFile, '--config', file, '--driver', kind, ...args] }));
    const id = await waitFor(`${kind} device id`, () => existsSync(join(stateDir, 'device.json')) && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 60_000 });
    await waitFor(`${kind} device online`, async () => (await admin.get(`/api/v1/devices/${id}`)).body?.presence === 'online', { timeoutMs: 60_000 });
    return id;
  };

  before(async () => {
    root = mkdtempSync('/tmp/pqa-');
    sim = await Vcsim.start();
    manager = await startManagerProcess({ args: ['--status-interval-sec', '2'] });
    admin = await manager.admin();
    const login = await pallas(cliConfig, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
    const token = await createEnrollmentToken(admin, { maxUses: 3 });
    const { url, user, password, thumbprint } = sim.info;
    [devices.sim, devices.qemu, devices.esxi] = await Promise.all([
      startAgent('sim', token, {}, []),
      startAgent('qemu', token, { qemu: { accel } }, ['--qemu-dir', qemuDir()]),
      startAgent('esxi', token, { esxi: { url, user, password, thumbprint } }, []),
    ]);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    if (root) killQemusUnder(root);
    await manager?.close();
    await sim?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    dirs.cleanup();
  });

  it('uploads the OVA with `pallas artifacts upload --kind ova`', async () => {
    const { path } = await buildOva(dirs.path, { name: NAME, vcpus, memoryMB: MEMORY_MB, diskMiB: 64, dataMiB: 8 });
    const up = await pallas(cliConfig, ['artifacts', 'upload', path, '--kind', 'ova', '--name', NAME, '--version', '1.0', '--json']);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const created = JSON.parse(up.stdout) as { id: string; kind: string };
    assert.equal(created.kind, 'ova');
    artifactId = created.id;
  });

  /** Deploys the artifact on a device, powers the VM on; both tasks must succeed. */
  const deployAndPowerOn = async (kind: 'sim' | 'qemu' | 'esxi'): Promise<Task> => {
    assert.ok(artifactId, 'uploaded by the first test');
    const vms = `/api/v1/devices/${devices[kind]}/vms`;
    const res = await admin.post<Task>(`${vms}/deploy`, { source: { kind: 'artifact', artifactId } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await final(res.body.id);
    assert.equal(done.state, 'succeeded', `${kind}: ${JSON.stringify(done.error)}\n${agents.map((a) => a.output().slice(-1500)).join('\n---\n')}`);
    assert.deepEqual([done.vm?.name, done.vm?.vcpus, done.vm?.memoryMB, done.vm?.powerState], [NAME, vcpus, MEMORY_MB, 'off']);
    const on = await final((await admin.post<Task>(`${vms}/${done.vmId}/power`, { action: 'on' })).body.id);
    assert.equal(on.state, 'succeeded', `${kind} power on: ${JSON.stringify(on.error)}`);
    return done;
  };

  it('sim: deployed from the artifact and on, as the manager\'s inventory shows', async () => {
    const done = await deployAndPowerOn('sim');
    await waitFor('the VM on in the inventory', async () =>
      (await admin.get<Vm[]>(`/api/v1/devices/${devices.sim}/vms`)).body.some((v) => v.id === done.vmId && v.name === NAME && v.powerState === 'on' && v.vcpus === vcpus && v.memoryMB === MEMORY_MB));
  });

  it('qemu: deployed from the artifact; the QEMU process runs with the OVF\'s memory', async () => {
    const done = await deployAndPowerOn('qemu');
    const procs = [...qemusMentioning(join(qemuDir(), done.vmId!)).values()];
    assert.equal(procs.length, 1, 'one QEMU serves the VM');
    assert.equal(argAfter(procs[0]!, '-m'), `${MEMORY_MB}M`, procs[0]!.join(' '));
    assert.equal(argAfter(procs[0]!, '-smp'), String(vcpus));
  });

  it('esxi: deployed from the artifact; the host (govmomi) shows the OVF\'s shape, powered on', async () => {
    const done = await deployAndPowerOn('esxi');
    const q = await sim.vm(NAME);
    assert.ok(q, 'the VM is on the host');
    assert.deepEqual([q.id, q.vcpus, q.memoryMB, q.powerState, q.disks.length], [done.vmId, vcpus, MEMORY_MB, 'poweredOn', 1]);
  });
});
