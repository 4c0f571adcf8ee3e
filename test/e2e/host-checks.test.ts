/**
 * Checks before queuing (issue #18 point 2), through REST and the CLI against a real manager and
 * a sim agent: what the device's last report says cannot succeed is refused at once (422 for a
 * limit, 409 for a taken name or a VM that is on) with the limit and the host's value, and is
 * sent anyway with `?force=true` / `--force` (the device then decides).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Device, Task } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { pallas } from './support/cli.js';

describe('checks before queuing, from the device\'s last report (sim)', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let agent: Proc;
  let deviceId: string;
  const dirs = tempDir('pallas-e2e-host-checks-');
  const config = join(dirs.path, 'cli');

  const final = (id: string) => waitFor(`task ${id} final`, async () => {
    const t = (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
    return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
  });
  const refused = (res: { status: number; body: any }, status: number, code: string, ...mentions: RegExp[]): void => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error.code, code);
    for (const m of mentions) assert.match(res.body.error.message, m);
  };

  before(async () => {
    manager = await startManagerProcess();
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const stateDir = join(dirs.path, 'agent');
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('online with facts', async () => {
      const d = (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body;
      return d?.presence === 'online' && d.facts !== null;
    });
    const login = await pallas(config, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await agent?.kill();
    await manager?.close();
    dirs.cleanup();
  });

  it('refuses what cannot fit the host, naming the limit and the host\'s value; force sends it anyway', async () => {
    const facts = (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.facts!;
    const vms = `/api/v1/devices/${deviceId}/vms`;
    const spec = { name: 'big', vcpus: 1, memoryMB: 256, diskGB: 1 };
    const before = (await admin.get<{ total: number }>(`/api/v1/tasks?deviceId=${deviceId}`)).body.total;

    refused(await admin.post(vms, { ...spec, vcpus: facts.cpu.cores + 1 }), 422, 'exceeds_host', new RegExp(`asks for ${facts.cpu.cores + 1} vCPUs, but host ${facts.hostname} has ${facts.cpu.cores} cores`), /--force/);
    refused(await admin.post(vms, { ...spec, memoryMB: facts.memory.totalMB + 1024 }), 422, 'exceeds_host', new RegExp(`has ${facts.memory.totalMB} MiB in all`));
    const most = Math.max(...facts.datastores.map((d) => d.freeGB));
    refused(await admin.post(vms, { ...spec, diskGB: Math.ceil(most) + 1 }), 422, 'exceeds_host', /datastore .* with the most free space has [\d.]+ GB free/);
    refused(await admin.post(vms, { ...spec, network: 'no-such-net' }), 422, 'exceeds_host', /has no network "no-such-net"; its networks are/);
    assert.equal((await admin.get<{ total: number }>(`/api/v1/tasks?deviceId=${deviceId}`)).body.total, before, 'nothing was queued');

    // Forced: queued, and the device says no itself.
    const forced = await admin.post<Task>(`${vms}?force=true`, { ...spec, vcpus: facts.cpu.cores + 1 });
    assert.equal(forced.status, 202, JSON.stringify(forced.body));
    assert.equal((await final(forced.body.id)).state, 'failed');
  });

  it('refuses a taken VM name and deleting a VM that is on (409); the CLI says so and --force sends it', async () => {
    const vms = `/api/v1/devices/${deviceId}/vms`;
    const created = await admin.post<Task>(vms, { name: 'web-1', vcpus: 1, memoryMB: 256, diskGB: 1 });
    const vmId = (await final(created.body.id)).vmId!;
    await waitFor('inventory has web-1', async () => (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.vms.some((v) => v.id === vmId));

    refused(await admin.post(vms, { name: 'web-1', vcpus: 1, memoryMB: 256, diskGB: 1 }), 409, 'conflict', new RegExp(`already has a VM named "web-1" \\(${vmId}\\)`));
    const cli = await pallas(config, ['vms', 'create', deviceId, '--name', 'web-1', '--vcpus', '1', '--memory', '256', '--disk', '1']);
    assert.equal(cli.code, 1, cli.stdout);
    assert.match(cli.stderr, /already has a VM named "web-1"/);
    const forced = await pallas(config, ['vms', 'create', deviceId, '--name', 'web-1', '--vcpus', '1', '--memory', '256', '--disk', '1', '--force', '--wait']);
    assert.equal(forced.code, 3, 'queued, then failed on the device');

    const on = await admin.post<Task>(`${vms}/${vmId}/power`, { action: 'on' });
    await final(on.body.id);
    await waitFor('inventory shows web-1 on', async () => (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.vms.some((v) => v.id === vmId && v.powerState === 'on'));
    refused(await admin.delete(`${vms}/${vmId}`), 409, 'conflict', /VM "web-1" \(.*\) is on; power it off first \(pallas vms power/);
    const del = await pallas(config, ['vms', 'rm', deviceId, vmId, '--yes', '--force', '--json']);
    assert.equal(del.code, 0, del.stderr);
  });
});
