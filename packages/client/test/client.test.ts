/**
 * @pallas/client against a real manager process and a real agent (sim driver): typed calls,
 * paging, the three kinds of session, errors with the API's codes, the live stream, waiting
 * for tasks, and artifact uploads and downloads with progress and resume.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PallasApiError, PallasClient, type LiveMessage } from '@pallas/client';
import { downloadFile, uploadFile } from '@pallas/client/node';
import { ADMIN_PASSWORD, patchFile, startAgentProcess, startManagerProcess, tempDir, waitFor, type ManagerProcess, type Proc } from '@pallas/testkit';

let manager: ManagerProcess;
let admin: PallasClient;
let agent: Proc;
let deviceId: string;
const dirs = tempDir('pallas-client-');

before(async () => {
  manager = await startManagerProcess({ args: ['--status-interval-sec', '2', '--max-artifact-bytes', '4000000'] });
  admin = await PallasClient.login({ server: manager.httpUrl, username: 'admin', password: ADMIN_PASSWORD });
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: 2 } });
  const stateDir = join(dirs.path, 'agent');
  agent = startAgentProcess({ managerUrl: manager.httpUrl, token, stateDir });
  deviceId = await waitFor('device enrolled', () => existsSync(join(stateDir, 'device.json'))
    && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
  await waitFor('device online', async () => (await admin.call('getDevice', { params: { id: deviceId } })).presence === 'online');
});

after(async () => {
  await agent?.kill();
  await manager?.close();
  dirs.cleanup();
});

describe('client: calls and sessions', () => {
  it('calls typed routes, pages through listings, and gives 204 as undefined', async () => {
    for (let i = 0; i < 5; i++) await admin.call('createUser', { body: { username: `pager-${i}`, password: 'pager-password-1', role: 'viewer' } });
    const pages: number[] = [];
    for await (const page of admin.pages('listUsers', undefined, 2)) pages.push(page.items.length);
    assert.deepEqual(pages, [2, 2, 2]); // admin + 5
    const users = await admin.all('listUsers');
    assert.equal(users.filter((u) => u.username.startsWith('pager-')).length, 5);
    assert.equal(await admin.call('deleteUser', { params: { id: users.find((u) => u.username === 'pager-0')!.id } }), undefined);
    assert.equal(admin.url('powerVm', { id: 'a b', vmId: 'v/1' }), `${manager.httpUrl}/api/v1/devices/a%20b/vms/v%2F1/power`);
  });

  it("rejects with the API's code and message", async () => {
    await assert.rejects(admin.call('getDevice', { params: { id: 'no-such-device' } }), (e: unknown) =>
      e instanceof PallasApiError && e.status === 404 && e.code === 'not_found' && /no-such-device/.test(e.message));
    await assert.rejects(admin.call('createVm', { params: { id: deviceId }, body: { name: 'x', vcpus: 0, memoryMB: 64, diskGB: 1 } }), (e: unknown) =>
      e instanceof PallasApiError && e.code === 'invalid_request' && /vcpus/.test(e.message));
    await assert.rejects(PallasClient.login({ server: manager.httpUrl, username: 'admin', password: 'wrong-password' }), (e: unknown) =>
      e instanceof PallasApiError && e.code === 'invalid_credentials');
  });

  it('acts with an API token, and with a cookie + CSRF session as the console does', async () => {
    const pat = await admin.call('createApiToken', { body: { name: 'client-test', role: 'operator' } });
    const automation = new PallasClient({ server: manager.httpUrl, token: pat.token });
    assert.equal((await automation.call('me')).role, 'operator');
    await assert.rejects(automation.call('listUsers'), (e: unknown) => e instanceof PallasApiError && e.code === 'forbidden');

    const console = new PallasClient({ server: manager.httpUrl, cookies: true });
    const login = await console.login('admin', ADMIN_PASSWORD);
    assert.equal(login.token, undefined, 'a cookie login shows no session secret');
    assert.equal(console.token, undefined);
    const created = await console.call('createEnrollmentToken', { body: { name: 'from-cookie' } });
    assert.equal(created.name, 'from-cookie');
    await console.logout();
    await assert.rejects(console.call('me'), (e: unknown) => e instanceof PallasApiError && e.status === 401);
  });

  it('tells onUnauthorized when the session has ended, but not for a wrong password', async () => {
    let told = 0;
    const client = new PallasClient({ server: manager.httpUrl, onUnauthorized: () => told++ });
    await assert.rejects(client.login('admin', 'wrong-password'));
    assert.equal(told, 0);
    await client.login('admin', ADMIN_PASSWORD);
    const stale = new PallasClient({ server: manager.httpUrl, token: client.token, onUnauthorized: () => told++ });
    await client.logout();
    await assert.rejects(stale.call('me'));
    assert.equal(told, 1);
  });
});

describe('client: live events and tasks', () => {
  it('follows the live stream and waits for tasks: power off every VM named test-* and wait', async () => {
    const stream = admin.events({ deviceId });
    await stream.opened;
    const seen: LiveMessage[] = [];
    const reading = (async () => {
      for await (const m of stream) seen.push(m);
    })();
    const made = [];
    for (const name of ['test-1', 'test-2', 'keep-1']) made.push(await admin.call('createVm', { params: { id: deviceId }, body: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } }));
    const created = await admin.waitForTasks(made.map((t) => t.id));
    assert.deepEqual(created.map((t) => t.state), ['succeeded', 'succeeded', 'succeeded']);
    for (const t of created) await admin.call('powerVm', { params: { id: deviceId, vmId: t.vmId! }, body: { action: 'on' } });

    // What docs/client.md shows: find the VMs by name across the fleet, power them off, wait.
    const powered: Array<{ id: string }> = [];
    for (const device of await admin.all('listDevices')) {
      for (const vm of device.vms.filter((v) => v.name.startsWith('test-'))) {
        powered.push(await admin.call('powerVm', { params: { id: device.id, vmId: vm.id }, body: { action: 'off' } }));
      }
    }
    assert.equal(powered.length, 2);
    const updates: string[] = [];
    const done = await admin.waitForTasks(powered.map((t) => t.id), { onUpdate: (t) => updates.push(`${t.id}:${t.state}`) });
    assert.ok(done.every((t) => t.state === 'succeeded' && t.vm?.powerState === 'off'), JSON.stringify(done));
    assert.ok(updates.length >= 2);
    await waitFor('their final events on the stream', () => powered.every((p) => seen.some((m) => m.type === 'task' && m.task.id === p.id && m.task.state === 'succeeded')));
    assert.ok(seen.some((m) => m.type === 'vms' && m.deviceId === deviceId), 'inventory events');
    assert.match(stream.lastEventId, /./, 'an id to resume from');
    stream.close();
    await reading;
  });

  it('waits for a task that is already final without the stream', async () => {
    const t = await admin.call('createVm', { params: { id: deviceId }, body: { name: 'quick', vcpus: 1, memoryMB: 64, diskGB: 1 } });
    await admin.waitForTask(t.id);
    const again = await admin.waitForTask(t.id, { onUpdate: () => {} });
    assert.equal(again.state, 'succeeded');
  });
});

describe('client: artifacts as streams', () => {
  it('uploads with progress, downloads with progress, resumes a cut download and checks it', async () => {
    const file = join(dirs.path, 'image.bin');
    const content = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => i % 251));
    patchFile('1').copy(content, 0); // a valid patch (tar readers ignore what follows its end)
    writeFileSync(file, content);
    const sent: number[] = [];
    const artifact = await uploadFile(admin, file, { kind: 'patch', name: 'client-test', version: '1' }, { onProgress: (n) => sent.push(n) });
    assert.equal(artifact.size, 3_000_000);
    assert.equal(sent.at(-1), 3_000_000);
    assert.ok(sent.length > 1, 'progress along the way');

    const out = join(dirs.path, 'copy.bin');
    const got: number[] = [];
    assert.deepEqual(await downloadFile(admin, artifact.id, out, { onProgress: (n) => got.push(n) }), { size: 3_000_000, sha256: artifact.sha256 });
    assert.equal(got.at(-1), 3_000_000);
    assert.deepEqual(readFileSync(out), readFileSync(file));

    // A cut download leaves a .part; the next one fetches only the rest.
    writeFileSync(`${out}.part`, readFileSync(file).subarray(0, 1_000_000));
    const resumed: number[] = [];
    await downloadFile(admin, artifact.id, out, { onProgress: (n) => resumed.push(n) });
    assert.ok(resumed[0]! > 1_000_000, 'counted from where it resumed');
    assert.deepEqual(readFileSync(out), readFileSync(file));
    assert.equal(existsSync(`${out}.part`), false);

    // A .part that is not a prefix of the artifact fails the check and is deleted.
    writeFileSync(`${out}.part`, Buffer.alloc(1000, 9));
    await assert.rejects(downloadFile(admin, artifact.id, out), /SHA-256/);
    assert.equal(existsSync(`${out}.part`), false);
    truncateSync(out, 0);
    assert.equal(statSync(out).size, 0);
  });

  it('is refused with the API code when the file is over the limit, before the body is sent', async () => {
    const big = join(dirs.path, 'big.bin');
    writeFileSync(big, Buffer.alloc(5_000_000));
    await assert.rejects(uploadFile(admin, big, { kind: 'patch', name: 'too-big', version: '1' }), (e: unknown) =>
      e instanceof PallasApiError && e.code === 'payload_too_large');
  });
});
