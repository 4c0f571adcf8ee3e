/**
 * Exactly once across crashes on the real hypervisors (issue #21, point 3; docs/tasks.md,
 * "Exactly once on the device"). The windows are opened deterministically with the test hold
 * hook (docs/testing.md, "Crash windows"), then the process is killed with SIGKILL inside them:
 *
 * - the agent, after the hypervisor made the VM and before the task's result was journaled,
 *   on `qemu` (real qemu-img and QEMU) and `esxi` (govmomi's vcsim), for `vm.create` and
 *   `vm.deploy` (an OVA on the device). Restarted on the same state dir, the agent resumes
 *   the task (its journal has `start` and no result), finds the VM by name and takes it as
 *   the result. Checked from outside the agent: the VM folders' records and `qemu-img info`,
 *   the QEMU process behind it once powered on; the govmomi query tool on vcsim.
 * - the manager, after a task was marked `sent` and before its command was published. The
 *   restarted manager re-sends in-flight tasks when the device comes online; the task runs
 *   once (the sim host's own history).
 *
 * A real manager throughout (run on PostgreSQL too, in the runner's PostgreSQL pass).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { buildOva } from '../../packages/agent/test/support/ova-builder.js';
import { killQemusUnder, qemuSkipReason, qemusMentioning } from '../../packages/agent/test/support/qemu-outside.js';
import { Vcsim, vcsimSkipReason } from '../../packages/agent/test/support/vcsim/vcsim.js';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';

interface Held { point: string; taskId?: string; taskIds?: string[]; recovering?: boolean; pid: number }

/** What the hold hook wrote: one line per hold reached. */
function holds(file: string): Held[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Held);
}

/** The journal records of one task, by type, read from the agent's state dir. */
function journalOf(stateDir: string, taskId: string): string[] {
  const file = join(stateDir, 'tasks.journal');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; taskId?: string })
    .filter((r) => r.taskId === taskId).map((r) => r.type);
}

describe('exactly once when the agent is killed between the hypervisor\'s act and the journal', {
  skip: skipUnless(qemuSkipReason, vcsimSkipReason),
  timeout: 600_000,
}, () => {
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  let sim: Vcsim;
  const dirs = tempDir('pallas-e2e-once-');
  // Short and under /tmp: QMP socket paths must fit in 107 bytes.
  let root: string;
  const agents: Proc[] = [];

  before(async () => {
    root = mkdtempSync('/tmp/pq1-');
    sim = await Vcsim.start();
    manager = await startManagerProcess({ args: ['--status-interval-sec', '2'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 10 });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    if (root) killQemusUnder(root);
    await manager?.close();
    await sim?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    dirs.cleanup();
  });

  const final = (id: string) => waitFor(`task ${id} final`, async () => {
    const t = (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
    return FINAL.includes(t.state) && t;
  }, { timeoutMs: 120_000 });

  /** The hypervisor, as seen without the agent: every VM of the name, with whatever proves it is real. */
  interface Outside { vmsNamed(name: string): Promise<Array<{ id: string; proof: string }>> }

  const qemuOutside = (qemuDir: string): Outside => ({
    async vmsNamed(name) {
      const found: Array<{ id: string; proof: string }> = [];
      if (!existsSync(qemuDir)) return found;
      // Staged (.new-…) and half-deleted (.del-…) folders count too: a second VM half made is still a second VM.
      for (const folder of readdirSync(qemuDir)) {
        const record = join(qemuDir, folder, 'vm.json');
        if (!existsSync(record) || (JSON.parse(readFileSync(record, 'utf8')) as { name: string }).name !== name) continue;
        const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(qemuDir, folder, 'disk.qcow2')], { encoding: 'utf8' })) as { format: string };
        found.push({ id: folder, proof: `qemu-img: ${info.format}` });
      }
      return found;
    },
  });
  const esxiOutside: Outside = {
    async vmsNamed(name) {
      return (await sim.vms()).filter((v) => v.name === name).map((v) => ({ id: v.id, proof: `vcsim: ${v.powerState}, ${v.disks.length} disk(s)` }));
    },
  };

  const cases = [
    { driver: 'qemu', op: 'create' },
    { driver: 'qemu', op: 'deploy' },
    { driver: 'esxi', op: 'create' },
    { driver: 'esxi', op: 'deploy' },
  ] as const;

  for (const { driver, op } of cases) {
    it(`${driver}, vm.${op}: the restarted agent takes the VM it made as the result; the host has it once`, async () => {
      const name = `once-${driver}-${op}`;
      const stateDir = join(dirs.path, name);
      const holdFile = join(dirs.path, `${name}.hold`);
      const qemuDir = join(root, `${driver}-${op}`);
      const config = join(dirs.path, `${name}.json`);
      const { url, user, password, thumbprint } = sim.info;
      writeFileSync(config, JSON.stringify(driver === 'qemu' ? { qemu: { accel } } : { esxi: { url, user, password, thumbprint } }));
      const args = ['--driver', driver, '--config', config, ...(driver === 'qemu' ? ['--qemu-dir', qemuDir] : [])];
      const outside = driver === 'qemu' ? qemuOutside(qemuDir) : esxiOutside;
      const start = (env: NodeJS.ProcessEnv = {}): Proc => {
        const p = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args, env });
        agents.push(p);
        return p;
      };

      const first = start({ PALLAS_TEST_HOLD: 'agent.task-acted', PALLAS_TEST_HOLD_FILE: holdFile });
      const deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
        && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 30_000 });
      await waitFor('online', async () => (await admin.get(`/api/v1/devices/${deviceId}`)).body?.presence === 'online', { timeoutMs: 30_000 });

      const vms = `/api/v1/devices/${deviceId}/vms`;
      const res = op === 'create'
        ? await admin.post<Task>(vms, { name, vcpus: 1, memoryMB: 64, diskGB: 1 })
        : await admin.post<Task>(`${vms}/deploy`, { name, source: { kind: 'file', path: (await buildOva(dirs.path, { name: `${name}-ovf`, vcpus: 1, memoryMB: 64, diskMiB: 16, dataMiB: 1 })).path } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const taskId = res.body.id;

      // Inside the window: the hypervisor has the VM, the journal has no result.
      await waitFor('the agent held after the hypervisor acted', () => holds(holdFile).some((h) => h.taskId === taskId), { timeoutMs: 120_000 });
      assert.equal((await outside.vmsNamed(name)).length, 1, 'the hypervisor made the VM before the kill');
      assert.deepEqual(journalOf(stateDir, taskId), ['start'], 'started, no result journaled');
      assert.equal(await first.kill(), 'SIGKILL');

      const second = start();
      const done = await final(taskId);
      assert.equal(done.state, 'succeeded', `${JSON.stringify(done.error)}\n${second.output().slice(-2000)}`);
      assert.equal(done.vm?.name, name);
      assert.match(second.output(), new RegExp(`resumed ${op}: the VM exists; taking it as the result`), 'the resumed branch took it');
      assert.deepEqual(journalOf(stateDir, taskId), ['start', 'result']);

      const onHost = await outside.vmsNamed(name);
      assert.equal(onHost.length, 1, `exactly one VM named ${name} on the host: ${JSON.stringify(onHost)}`);
      assert.equal(onHost[0]!.id, done.vmId, 'the task\'s VM is the one on the host');

      if (driver === 'qemu') {
        // Powered on, one QEMU process serves it (and no other folder's VM has its name).
        const on = await final((await admin.post<Task>(`${vms}/${done.vmId}/power`, { action: 'on' })).body.id);
        assert.equal(on.state, 'succeeded', JSON.stringify(on.error));
        assert.equal(qemusMentioning(join(qemuDir, done.vmId!)).size, 1, 'one QEMU for the VM');
        const off = await final((await admin.post<Task>(`${vms}/${done.vmId}/power`, { action: 'off' })).body.id);
        assert.equal(off.state, 'succeeded', JSON.stringify(off.error));
      }
      await waitFor('the manager\'s inventory has it once', async () => (await admin.get<Vm[]>(vms)).body.filter((v) => v.name === name).length === 1);
      await second.stop();
    });
  }
});

describe('exactly once when the manager is killed between marking a task sent and publishing it', { timeout: 300_000 }, () => {
  const dirs = tempDir('pallas-e2e-once-mgr-');
  const managers: ManagerProcess[] = [];
  let agent: Proc | undefined;
  after(async () => {
    await agent?.kill();
    for (const m of managers.reverse()) await m.close();
    dirs.cleanup();
  });

  it('the restarted manager sends it again when the device comes back, and the device runs it once', async () => {
    const holdFile = join(dirs.path, 'manager.hold');
    const env = { PALLAS_TEST_HOLD: 'manager.task-sent', PALLAS_TEST_HOLD_FILE: holdFile };
    const first = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '2'], env });
    managers.push(first);
    const admin = await first.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const stateDir = join(dirs.path, 'agent');
    const config = join(dirs.path, 'agent.json');
    writeFileSync(config, JSON.stringify({ sim: { latencyMs: 20 } }));
    agent = startAgentProcess({ managerUrl: first.httpUrl, stateDir, token, args: ['--config', config] });
    const deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('online', async () => (await admin.get(`/api/v1/devices/${deviceId}`)).body?.presence === 'online');

    const res = await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'once-across-manager', vcpus: 1, memoryMB: 256, diskGB: 1 });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const taskId = res.body.id;
    await waitFor('the manager held between sent and publish', () => holds(holdFile).some((h) => h.taskIds?.includes(taskId)));
    // Inside the window: the store says sent (the HTTP side still answers), the device never got it.
    assert.equal((await admin.get<Task>(`/api/v1/tasks/${taskId}`)).body.state, 'sent');
    assert.deepEqual(journalOf(stateDir, taskId), [], 'not received by the device');
    const ports = { http: new URL(first.httpUrl).port, mqtt: String(first.mqttPort) };
    await first.kill();

    // The same data, ports and database, without the hold.
    const second = await startManagerProcess({
      dataDir: first.dataDir,
      database: { url: first.databaseUrl },
      args: ['--keepalive-sec', '5', '--status-interval-sec', '2', '--http-port', ports.http, '--mqtt-port', ports.mqtt],
    });
    managers.push(second);
    const admin2 = await second.admin();
    const done = await waitFor('task final', async () => {
      const t = (await admin2.get<Task>(`/api/v1/tasks/${taskId}`)).body;
      return FINAL.includes(t.state) && t;
    }, { timeoutMs: 60_000 });
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    const simHost = JSON.parse(readFileSync(join(stateDir, 'sim-host.json'), 'utf8')) as { vms: Vm[]; history: Array<{ op: string; vmId: string }> };
    // Refused calls are in the history too: a second run, refused for the taken name, counts.
    assert.equal(simHost.history.filter((h) => h.op === 'createVm').length, 1, 'created once on the host');
    assert.equal(simHost.vms.filter((v) => v.name === 'once-across-manager').length, 1);
    assert.deepEqual(journalOf(stateDir, taskId), ['start', 'result', ...(journalOf(stateDir, taskId).includes('acked') ? ['acked'] : [])]);
  });
});
