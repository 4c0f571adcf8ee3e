/**
 * The VM lifecycle through the real `pallas` CLI, on a real manager and a real agent (sim
 * driver): every change waits for its task (`--wait`), and a failing task makes the CLI exit
 * non-zero with the device's reason.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { pallas } from './support/cli.js';

describe('VM lifecycle through the CLI (sim driver)', () => {
  let manager: ManagerProcess;
  let agent: Proc;
  let deviceId: string;
  const dirs = tempDir('pallas-e2e-cli-');
  const config = join(dirs.path, 'cli');

  before(async () => {
    manager = await startManagerProcess();
    const admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const stateDir = join(dirs.path, 'agent');
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('online', async () => (await admin.get(`/api/v1/devices/${deviceId}`)).body?.presence === 'online');
    const login = await pallas(config, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await agent?.kill();
    await manager?.close();
    dirs.cleanup();
  });

  it('creates, powers on and off, updates and deletes a VM, each with --wait', async () => {
    const create = await pallas(config, ['vms', 'create', deviceId, '--name', 'cli-vm', '--vcpus', '1', '--memory', '256', '--disk', '1', '--wait', '--json']);
    assert.equal(create.code, 0, create.stderr);
    const created = JSON.parse(create.stdout) as Task;
    assert.equal(created.state, 'succeeded');
    const vmId = created.vmId!;

    const ls = await pallas(config, ['vms', 'ls', deviceId, '--json']);
    assert.ok((JSON.parse(ls.stdout) as Vm[]).some((v) => v.id === vmId && v.name === 'cli-vm'), ls.stdout);

    // Without --json and without a terminal: plain progress lines, no escape codes.
    const on = await pallas(config, ['vms', 'power', deviceId, 'cli-vm', 'on', '--wait']);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /succeeded/);
    assert.doesNotMatch(on.stdout, /\x1b\[/);
    const off = await pallas(config, ['vms', 'power', deviceId, vmId, 'off', '--wait']);
    assert.equal(off.code, 0, off.stderr);

    const update = await pallas(config, ['vms', 'update', deviceId, vmId, '--name', 'cli-vm-2', '--vcpus', '2', '--wait', '--json']);
    assert.equal(update.code, 0, update.stderr);
    assert.equal((JSON.parse(update.stdout) as Task).vm?.name, 'cli-vm-2');

    const rm = await pallas(config, ['vms', 'rm', deviceId, vmId, '--yes', '--wait']);
    assert.equal(rm.code, 0, rm.stderr);
    const after = await pallas(config, ['vms', 'ls', deviceId, '--json']);
    await waitFor('VM gone', async () => !(JSON.parse((await pallas(config, ['vms', 'ls', deviceId, '--json'])).stdout) as Vm[]).some((v) => v.id === vmId));
    assert.equal(after.code, 0);

    const tasks = await pallas(config, ['tasks', 'ls', '--device', deviceId, '--json']);
    const page = JSON.parse(tasks.stdout) as { items: Task[] };
    assert.deepEqual(page.items.map((t) => t.kind).reverse(), ['vm.create', 'vm.power', 'vm.power', 'vm.update', 'vm.delete']);
    assert.ok(page.items.every((t) => t.state === 'succeeded'));
  });

  it('exits non-zero with the device\'s reason when a task fails, and tasks watch says the same', async () => {
    // A VM the manager does not know is refused by the CLI before any task is made.
    const unknown = await pallas(config, ['vms', 'power', deviceId, 'vm-999', 'on']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no VM with ID or name 'vm-999'/);
    // vm-100 is running on every seeded sim host: the manager refuses to delete it at once,
    const early = await pallas(config, ['vms', 'rm', deviceId, 'vm-100', '--yes', '--wait']);
    assert.equal(early.code, 1, `${early.stdout}\n${early.stderr}`);
    assert.match(early.stderr, /is on; power it off first \(pallas vms power/);
    // and forced, the host refuses to delete a running VM.
    const fail = await pallas(config, ['vms', 'rm', deviceId, 'vm-100', '--yes', '--force', '--wait']);
    assert.equal(fail.code, 3, `${fail.stdout}\n${fail.stderr}`);
    assert.match(`${fail.stdout}${fail.stderr}`, /power it off first/);
    const failed = JSON.parse((await pallas(config, ['tasks', 'ls', '--device', deviceId, '--state', 'failed', '--json'])).stdout) as { items: Task[] };
    const id = failed.items[0]!.id;
    const watch = await pallas(config, ['tasks', 'watch', id]);
    assert.equal(watch.code, 3);
    assert.match(`${watch.stdout}${watch.stderr}`, /invalid_state|power it off first/);
    const show = await pallas(config, ['tasks', 'show', id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /failed/);
  });
});
