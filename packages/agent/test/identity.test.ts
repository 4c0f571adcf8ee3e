import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAgentError } from '../src/errors.js';
import { StateDir } from '../src/identity/state-dir.js';

const root = await mkdtemp(join(tmpdir(), 'pallas-identity-'));
after(() => rm(root, { recursive: true, force: true }));

const credentialFor = (deviceId: string) => ({
  deviceId,
  mqtt: { url: 'mqtt://127.0.0.1:1', clientId: deviceId, username: deviceId, password: 'secret', keepaliveSec: 30 },
  statusIntervalSec: 60,
});

describe('state dir identity', () => {
  it('keeps the same device id for the same state dir', async () => {
    const dir = join(root, 'a');
    const first = await new StateDir(dir).loadOrCreateIdentity();
    const second = await new StateDir(dir).loadOrCreateIdentity();
    assert.match(first.deviceId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(second, first);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'device.json'), 'utf8')), first);
  });

  it('gives a new dir a new id', async () => {
    const a = await new StateDir(join(root, 'b1')).loadOrCreateIdentity();
    const b = await new StateDir(join(root, 'b2')).loadOrCreateIdentity();
    assert.notEqual(a.deviceId, b.deviceId);
  });

  it('creates the dir 0700 and files 0600, leaving no temp files', async () => {
    const dir = join(root, 'c', 'nested');
    const state = new StateDir(dir);
    const { deviceId } = await state.loadOrCreateIdentity();
    await state.writeCredential(credentialFor(deviceId));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'credential.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'device.json'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(dir)).sort(), ['credential.json', 'device.json']);
  });

  it('reads, replaces and deletes the credential; the id survives', async () => {
    const state = new StateDir(join(root, 'd'));
    const { deviceId } = await state.loadOrCreateIdentity();
    assert.equal(await state.readCredential(deviceId), null);
    await state.writeCredential(credentialFor(deviceId));
    const next = { ...credentialFor(deviceId), statusIntervalSec: 5 };
    await state.writeCredential(next);
    assert.deepEqual(await state.readCredential(deviceId), next);
    await state.deleteCredential();
    await state.deleteCredential(); // idempotent
    assert.equal(await state.readCredential(deviceId), null);
    assert.equal((await state.loadOrCreateIdentity()).deviceId, deviceId);
  });

  it('keeps one enrollment key (0600) for every attempt until it is cleared; replaces an unreadable one', async () => {
    const dir = join(root, 'key');
    const state = new StateDir(dir);
    await state.loadOrCreateIdentity();
    const key = await state.enrollmentKey();
    assert.match(key, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await new StateDir(dir).enrollmentKey(), key, 'a restarted agent sends the same key');
    assert.equal((await stat(join(dir, 'enrollment-key'))).mode & 0o777, 0o600);
    await writeFile(join(dir, 'enrollment-key'), 'mangled');
    const replaced = await state.enrollmentKey();
    assert.notEqual(replaced, key);
    assert.match(replaced, /^[A-Za-z0-9_-]{43}$/);
    await state.clearEnrollmentKey();
    await state.clearEnrollmentKey(); // idempotent
    assert.deepEqual((await readdir(dir)).sort(), ['device.json']);
  });

  it('refuses a corrupt device.json instead of minting a new id', async () => {
    const dir = join(root, 'e');
    await new StateDir(dir).loadOrCreateIdentity();
    await writeFile(join(dir, 'device.json'), '{"deviceId": "not-a-uuid"');
    await assert.rejects(new StateDir(dir).loadOrCreateIdentity(), (err) => isAgentError(err, 'state_invalid'));
    await writeFile(join(dir, 'device.json'), '{"deviceId": "not-a-uuid", "createdAt": "2024-01-01T00:00:00Z"}');
    await assert.rejects(new StateDir(dir).loadOrCreateIdentity(), /deviceId/);
  });

  it("refuses a credential that belongs to another device", async () => {
    const state = new StateDir(join(root, 'f'));
    const { deviceId } = await state.loadOrCreateIdentity();
    await state.writeCredential(credentialFor('00000000-0000-4000-8000-000000000000'));
    await assert.rejects(state.readCredential(deviceId), (err) => isAgentError(err, 'state_invalid'));
  });

  it('writes (0600), reads and clears the retired marker; a corrupt one is an error, not "not retired"', async () => {
    const dir = join(root, 'g');
    const state = new StateDir(dir);
    await state.loadOrCreateIdentity();
    assert.equal(await state.readRetired(), null);
    const marker = { reason: 'decommissioned by the manager: site closed', at: '2025-03-04T05:06:07.000Z' };
    await state.writeRetired(marker);
    assert.deepEqual(await state.readRetired(), marker);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'retired.json'), 'utf8')), marker);
    assert.equal((await stat(join(dir, 'retired.json'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(dir)).sort(), ['device.json', 'retired.json'], 'no temp files');
    await writeFile(join(dir, 'retired.json'), '{"reason": 1}');
    await assert.rejects(state.readRetired(), (err) => isAgentError(err, 'state_invalid') && /retired\.json/.test((err as Error).message));
    await writeFile(join(dir, 'retired.json'), 'garbage');
    await assert.rejects(state.readRetired(), (err) => isAgentError(err, 'state_invalid'));
    await state.clearRetired();
    await state.clearRetired(); // idempotent
    assert.equal(await state.readRetired(), null);
  });
});
