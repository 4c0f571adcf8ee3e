/**
 * The esxi driver end to end: a real manager, a real agent process (`--driver esxi`) and
 * govmomi's vcsim as the ESXi host. Every effect of a REST call is confirmed with the vcsim
 * query tool (govmomi, independent of the driver); changes made with it directly ("outside
 * Pallas") must show in the manager. Faults (host down, wrong password, no space) fail their
 * task with a clear message, and the next task succeeds with the same agent process.
 *
 * Needs Go and govmomi's sources: skipped without them on a partial run, failed under CI and
 * npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import { createEnrollmentToken, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc } from '@pallas/testkit';
import { Vcsim, vcsimSkipReason } from '../../packages/agent/test/support/vcsim/vcsim.js';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

describe('esxi driver end to end, against vcsim', { skip: skipUnless(vcsimSkipReason), timeout: 600_000 }, () => {
  let sim: Vcsim;
  let manager: ManagerProcess;
  let admin: Api;
  let agent: Proc;
  let deviceId: string;
  let token: string;
  const dirs = tempDir('pallas-e2e-esxi-');

  const vms = async (): Promise<Vm[]> => (await admin.get<Vm[]>(`/api/v1/devices/${deviceId}/vms`)).body;
  const run = async (res: { status: number; body: Task }): Promise<Task> => {
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id;
    return waitFor(`task ${id} final`, async () => {
      const t = (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
      return FINAL.includes(t.state) && t;
    }, { timeoutMs: 60_000 });
  };
  const succeeded = (t: Task): Task => {
    assert.equal(t.state, 'succeeded', JSON.stringify(t.error));
    return t;
  };
  // `force`: past the manager's own check of the last report (host-checks.test.ts), so that the
  // host itself answers.
  const create = (name: string, diskGB = 1, force = false) =>
    admin.post<Task>(`/api/v1/devices/${deviceId}/vms${force ? '?force=true' : ''}`, { name, vcpus: 1, memoryMB: 256, diskGB });

  before(async () => {
    sim = await Vcsim.start();
    manager = await startManagerProcess({ args: ['--status-interval-sec', '1'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 2 });
    const stateDir = join(dirs.path, 'agent');
    const config = join(dirs.path, 'agent.json');
    const { url, user, password, thumbprint } = sim.info;
    writeFileSync(config, JSON.stringify({ esxi: { url, user, password, thumbprint } }));
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config, '--driver', 'esxi'] });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 30_000 });
  });
  after(async () => {
    await agent?.kill();
    await manager?.close();
    await sim?.stop();
    dirs.cleanup();
  });

  it('enrolls; the manager shows the host facts and VMs, and follows changes made on the host directly', async () => {
    const device = await waitFor('online with facts', async () => {
      const d = (await admin.get(`/api/v1/devices/${deviceId}`)).body;
      return d?.presence === 'online' && d.facts !== null && d;
    });
    const facts = device.facts;
    assert.equal(facts.hypervisor.kind, 'esxi');
    assert.equal(facts.hypervisor.version, '6.5.0');
    assert.ok(facts.hypervisor.build);
    const stores = await sim.query<Array<{ name: string }>>('datastores');
    assert.deepEqual(facts.datastores.map((d: { name: string }) => d.name), stores.map((s) => s.name));
    assert.deepEqual(facts.networks, ['VM Network']);

    const onHost = await sim.vms();
    await waitFor('the host\'s VMs in the manager', async () => {
      const listed = await vms();
      return onHost.every((q) => listed.some((v) => v.id === q.id && v.name === q.name && v.powerState === 'on'));
    });

    // Outside Pallas: power one off, rename the other, make a new one.
    const [a, b] = onHost;
    await sim.query('power-off', a!.name);
    await sim.query('rename', b!.name, 'renamed-on-host');
    await sim.query('create', 'made-on-host', '2', '512');
    await waitFor('the manager follows', async () => {
      const listed = await vms();
      return listed.find((v) => v.id === a!.id)?.powerState === 'off'
        && listed.find((v) => v.id === b!.id)?.name === 'renamed-on-host'
        && listed.some((v) => v.name === 'made-on-host' && v.vcpus === 2 && v.memoryMB === 512);
    }, { timeoutMs: 15_000 });
  });

  it('creates, powers, reconfigures and deletes through the REST API, each confirmed on the host', async () => {
    const made = succeeded(await run(await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'rest-1', vcpus: 2, memoryMB: 512, diskGB: 2 })));
    const vmId = made.vmId!;
    let q = await sim.vm('rest-1');
    assert.ok(q, 'on the host');
    assert.equal(q.id, vmId);
    assert.deepEqual([q.powerState, q.vcpus, q.memoryMB, q.disks.length, q.disks[0]!.capacityKB], ['poweredOff', 2, 512, 1, Math.ceil(2e9 / 1024)]);

    succeeded(await run(await admin.post<Task>(`/api/v1/devices/${deviceId}/vms/${vmId}/power`, { action: 'on' })));
    assert.equal((await sim.vm('rest-1'))?.powerState, 'poweredOn');
    succeeded(await run(await admin.post<Task>(`/api/v1/devices/${deviceId}/vms/${vmId}/power`, { action: 'reset' })));
    assert.equal((await sim.vm('rest-1'))?.powerState, 'poweredOn');
    succeeded(await run(await admin.post<Task>(`/api/v1/devices/${deviceId}/vms/${vmId}/power`, { action: 'off' })));
    assert.equal((await sim.vm('rest-1'))?.powerState, 'poweredOff');

    succeeded(await run(await admin.patch<Task>(`/api/v1/devices/${deviceId}/vms/${vmId}`, { name: 'rest-2', vcpus: 1, memoryMB: 1024 })));
    q = await sim.vm('rest-2');
    assert.ok(q);
    assert.deepEqual([q.id, q.vcpus, q.memoryMB], [vmId, 1, 1024]);

    succeeded(await run(await admin.delete<Task>(`/api/v1/devices/${deviceId}/vms/${vmId}`)));
    assert.equal((await sim.vms()).some((v) => v.id === vmId), false);
    await waitFor('gone from the manager', async () => !(await vms()).some((v) => v.id === vmId));
  });

  it('fails tasks clearly while the host is down, with a wrong password and without space; the next task succeeds with the same agent', async () => {
    await sim.stop();
    const down = await run(await create('while-down'));
    assert.equal(down.state, 'failed');
    assert.equal(down.error?.code, 'unavailable');
    assert.match(down.error!.message, /unreachable/);
    await sim.start();
    succeeded(await run(await create('after-down')));
    assert.ok(await sim.vm('after-down'));

    const password = sim.info.password;
    await sim.stop();
    await sim.start({ password: 'changed-on-the-host' });
    const refused = await run(await create('wrong-password'));
    assert.equal(refused.state, 'failed');
    assert.equal(refused.error?.code, 'unavailable');
    assert.match(refused.error!.message, /refused the login of user "root"/);
    await sim.stop();
    await sim.start({ password });
    succeeded(await run(await create('password-back')));

    const full = await run(await create('too-big', 65_536, true));
    assert.equal(full.state, 'failed');
    assert.equal(full.error?.code, 'no_space');
    assert.match(full.error!.message, /no space for a 65536 GB disk/);
    assert.equal(await sim.vm('too-big'), undefined);
    succeeded(await run(await create('fits')));

    assert.equal(agent.child.exitCode, null, 'the same agent process throughout, never restarted');
    assert.equal((await admin.get(`/api/v1/devices/${deviceId}`)).body.presence, 'online');
  });

  it('a new agent whose host is down waits for it, and enrolls once it answers', async () => {
    const late = await Vcsim.start({ vms: 1 });
    await late.stop();
    const stateDir = join(dirs.path, 'late-agent');
    const config = join(dirs.path, 'late-agent.json');
    const { url, user, password, thumbprint } = late.info;
    writeFileSync(config, JSON.stringify({ esxi: { url, user, password, thumbprint } }));
    const waiting = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config, '--driver', 'esxi'] });
    try {
      await waitFor('the agent waiting for its host', () => waiting.output().includes('enrolling once it answers'), { timeoutMs: 30_000 });
      assert.equal(waiting.child.exitCode, null, 'still running');
      await late.start();
      const id = (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
      const device = await waitFor('enrolled with the host facts', async () => {
        const d = (await admin.get(`/api/v1/devices/${id}`)).body;
        return d?.presence === 'online' && d.facts !== null && d;
      }, { timeoutMs: 30_000 });
      assert.equal(device.facts.hypervisor.kind, 'esxi');
      await waitFor('its VM', async () => (await admin.get<Vm[]>(`/api/v1/devices/${id}/vms`)).body.length === 1);
    } finally {
      await waiting.kill();
      await late.stop();
    }
  });
});
