/**
 * Issue #15 point 10: device ids are canonical lower-case UUIDs. A device id that differs from
 * an enrolled one only in case must not become a twin device (enrollment refuses it), so that
 * `pallas devices block <ID in upper case>` can only ever mean the one device. Real manager
 * process, REST and the real `pallas` binary.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Device, EnrollResponse } from '@pallas/protocol';
import { ADMIN_PASSWORD, Api, createEnrollmentToken, sampleHostFacts, startManagerProcess, tempDir, type ManagerProcess } from '@pallas/testkit';
import { pallas } from './support/cli.js';

let manager: ManagerProcess;
let admin: Api;
const dirs = tempDir('pallas-device-id-case-');

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  const login = await pallas(dirs.path, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await manager?.close();
  dirs.cleanup();
});

describe('device ids are canonical lower-case UUIDs (issue #15 point 10)', () => {
  it('refuses to enroll an id that differs from an enrolled one only in case, and any upper-case id', async () => {
    const token = await createEnrollmentToken(admin, { name: 'case', maxUses: 10 });
    const id = randomUUID();
    const first = await manager.api.post<EnrollResponse>('/api/v1/enroll', { token, deviceId: id, facts: sampleHostFacts('legit') });
    assert.equal(first.status, 200, JSON.stringify(first.body));

    const twin = await manager.api.post('/api/v1/enroll', { token, deviceId: id.toUpperCase(), facts: sampleHostFacts('twin') });
    assert.equal(twin.status, 400, `a twin of ${id} was enrolled: ${JSON.stringify(twin.body)}`);
    assert.equal(twin.body.error.code, 'invalid_request');
    assert.match(twin.body.error.message, /deviceId/);
    const fresh = await manager.api.post('/api/v1/enroll', { token, deviceId: randomUUID().toUpperCase(), facts: sampleHostFacts('shouting') });
    assert.equal(fresh.status, 400);

    const all = await admin.get<{ items: Device[] }>('/api/v1/devices?limit=100');
    assert.deepEqual(all.body.items.map((d) => d.id), [id], 'one device, under its canonical id');
  });

  it('pallas devices block <upper-case id> blocks that device and no other', async () => {
    const token = await createEnrollmentToken(admin, { name: 'case-cli', maxUses: 10 });
    const target = randomUUID();
    const bystander = randomUUID();
    for (const [deviceId, host] of [[target, 'target'], [bystander, 'bystander']] as const) {
      assert.equal((await manager.api.post('/api/v1/enroll', { token, deviceId, facts: sampleHostFacts(host) })).status, 200);
    }
    const blocked = await pallas(dirs.path, ['devices', 'block', target.toUpperCase()]);
    assert.equal(blocked.code, 0, blocked.stderr);
    const status = async (id: string) => (await admin.get<Device>(`/api/v1/devices/${id}`)).body.status;
    assert.equal(await status(target), 'blocked');
    assert.equal(await status(bystander), 'active');
  });
});
