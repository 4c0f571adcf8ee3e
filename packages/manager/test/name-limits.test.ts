/**
 * Names are refused when too long, never cut (issue #18, point 5): for each resource with a
 * name, a real manager process answers one character over the limit with 400 `invalid_request`
 * naming the field and the limit in words, creates or changes nothing, and takes a name of
 * exactly the limit whole. The limits are the protocol's NAME_LIMITS (docs/api.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NAME_LIMITS } from '@pallas/protocol/constants';
import type { Device, PageOf, Task } from '@pallas/protocol';
import { Api, createEnrollmentToken, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { enroll, expectError } from './support.js';

let manager: ManagerProcess;
let admin: Api;
let deviceId = '';

/** A name of `n` characters that passes every resource's pattern. */
const nameOf = (n: number) => `n${'a'.repeat(n - 1)}`;
/** What the manager says for a name over `limit` (the CLI turns it into a sentence too). */
const said = (field: string, limit: number) => `body.${field}: must not have more than ${limit} characters`;

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  deviceId = (await enroll(manager.api, await createEnrollmentToken(admin), 'limits-host')).deviceId;
});
after(async () => {
  await manager?.close();
});

describe('name limits', () => {
  it('has one table of limits, which the API documents', async () => {
    assert.deepEqual(NAME_LIMITS, { device: 255, vm: 80, artifact: 128, group: 128, rollout: 128, apiToken: 128, enrollmentToken: 255, username: 64 });
    const openapi = (await admin.get('/api/v1/openapi.json')).body as { components?: unknown };
    assert.match(JSON.stringify(openapi), /"maxLength":255/);
  });

  it('refuses a VM name one over the limit with the limit, and queues nothing', async () => {
    const body = (name: string) => ({ name, vcpus: 1, memoryMB: 64, diskGB: 1 });
    expectError(await admin.post(`/api/v1/devices/${deviceId}/vms`, body(nameOf(NAME_LIMITS.vm + 1))), 400, 'invalid_request', said('name', NAME_LIMITS.vm));
    expectError(await admin.post(`/api/v1/devices/${deviceId}/vms`, body(nameOf(300))), 400, 'invalid_request', said('name', NAME_LIMITS.vm));
    expectError(await admin.post(`/api/v1/devices/${deviceId}/vms/deploy`, { source: { kind: 'artifact', artifactId: 'art_x' }, name: nameOf(300) }), 400, 'invalid_request', 'name', String(NAME_LIMITS.vm));
    assert.equal((await admin.get<PageOf<Task>>(`/api/v1/tasks?deviceId=${deviceId}`)).body.total, 0, 'nothing was queued');
    const ok = await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, body(nameOf(NAME_LIMITS.vm)));
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(ok.body.operation.kind === 'vm.create' && ok.body.operation.spec.name, nameOf(NAME_LIMITS.vm), 'kept whole');
  });

  it('refuses a device name one over the limit and keeps the old one; takes the limit whole', async () => {
    expectError(await admin.patch(`/api/v1/devices/${deviceId}`, { name: nameOf(NAME_LIMITS.device + 1) }), 400, 'invalid_request', said('name', NAME_LIMITS.device));
    assert.equal((await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.name, 'limits-host');
    const ok = await admin.patch<Device>(`/api/v1/devices/${deviceId}`, { name: nameOf(NAME_LIMITS.device) });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.name, nameOf(NAME_LIMITS.device));
  });

  it('refuses over-long names of users, groups, rollouts, API and enrollment tokens, and creates none', async () => {
    const cases: Array<[string, (n: number) => unknown, string, number, string]> = [
      ['/api/v1/users', (n) => ({ username: nameOf(n), password: 'long-enough-password', role: 'viewer' }), 'username', NAME_LIMITS.username, '/api/v1/users'],
      ['/api/v1/groups', (n) => ({ name: nameOf(n), deviceIds: [deviceId] }), 'name', NAME_LIMITS.group, '/api/v1/groups'],
      ['/api/v1/api-tokens', (n) => ({ name: nameOf(n) }), 'name', NAME_LIMITS.apiToken, '/api/v1/api-tokens'],
      ['/api/v1/enrollment-tokens', (n) => ({ name: nameOf(n) }), 'name', NAME_LIMITS.enrollmentToken, '/api/v1/enrollment-tokens'],
      ['/api/v1/rollouts', (n) => ({ name: nameOf(n), operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' }, deviceIds: [deviceId] }), 'name', NAME_LIMITS.rollout, '/api/v1/rollouts'],
    ];
    for (const [path, body, field, limit, list] of cases) {
      const before = (await admin.get<PageOf<unknown>>(list)).body.total;
      expectError(await admin.post(path, body(limit + 1)), 400, 'invalid_request', said(field, limit));
      expectError(await admin.post(path, body(300)), 400, 'invalid_request', said(field, limit));
      assert.equal((await admin.get<PageOf<unknown>>(list)).body.total, before, `${path}: nothing created`);
      const ok = await admin.post<Record<string, unknown>>(path, body(limit));
      assert.ok(ok.status === 201 || ok.status === 200 || ok.status === 202, `${path} takes ${limit} characters: ${ok.status} ${JSON.stringify(ok.body)}`);
      const kept = JSON.stringify(ok.body);
      assert.ok(kept.includes(`"${nameOf(limit)}"`), `${path}: the name is kept whole`);
    }
  });

  it('refuses an artifact name over the limit before reading the upload', async () => {
    const res = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=patch&name=${nameOf(NAME_LIMITS.artifact + 1)}&version=1`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' }, body: Buffer.from('x'),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_request');
    assert.match(body.error.message, new RegExp(`name: must not have more than ${NAME_LIMITS.artifact} characters`));
    assert.equal((await admin.get<PageOf<unknown>>('/api/v1/artifacts')).body.total, 0);
  });
});
