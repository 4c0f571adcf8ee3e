/**
 * The audit log end to end, against a real manager process: each audited action (failed and
 * good logins, user create/delete, API token create/revoke, device rename, VM task create and
 * cancel, enrollment, a refused call) appears in GET /api/v1/audit with the right actor,
 * target, outcome and address, newest first, filterable, and without any secret.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry, CreatedApiToken, PageOf, Task, User } from '@pallas/protocol';
import { Api, createEnrollmentToken, startManagerProcess, waitFor, type ManagerProcess } from '@pallas/testkit';
import { enroll, expectError, fakeFacts } from './support.js';

let manager: ManagerProcess;
let admin: Api;
let operator: Api;
let operatorUser: User;
const secrets: string[] = [];

/** Waits for the entry (records are written right after the response) and returns it. */
async function entry(filter: Partial<Record<'action' | 'actor' | 'target', string>>, match: (e: AuditEntry) => boolean = () => true): Promise<AuditEntry> {
  const qs = new URLSearchParams({ ...filter, limit: '100' });
  return waitFor(`audit entry ${qs}`, async () => {
    const res = await admin.get<PageOf<AuditEntry>>(`/api/v1/audit?${qs}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items.find(match) ?? false;
  }, { timeoutMs: 5000 });
}

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  operatorUser = (await admin.post<User>('/api/v1/users', { username: 'olivia', password: 'olivia-password-1', role: 'operator' })).body;
  operator = await manager.api.login('olivia', 'olivia-password-1');
  secrets.push('olivia-password-1');
});

after(async () => manager?.close());

describe('audit log', () => {
  it('records a failed login with the name tried and the address, and a good one', async () => {
    expectError(await manager.api.post('/api/v1/auth/login', { username: 'olivia', password: 'not-her-password' }), 401, 'invalid_credentials');
    secrets.push('not-her-password');
    const failed = await entry({ action: 'login.failed' });
    assert.deepEqual(failed.actor, { kind: 'anonymous', name: 'olivia' });
    assert.equal(failed.outcome, 'denied');
    assert.equal(failed.ip, '127.0.0.1');
    const ok = await entry({ action: 'login.ok', actor: 'olivia' });
    assert.deepEqual(ok.actor, { kind: 'user', id: operatorUser.id, name: 'olivia' });
    assert.equal(ok.outcome, 'ok');
  });

  it('records user creation and deletion by the admin', async () => {
    const created = await admin.post<User>('/api/v1/users', { username: 'temp-user', password: 'temp-user-password', role: 'viewer' });
    secrets.push('temp-user-password');
    assert.equal((await admin.delete(`/api/v1/users/${created.body.id}`)).status, 204);
    const c = await entry({ action: 'user.create', target: created.body.id });
    assert.equal(c.actor.kind, 'user');
    assert.equal(c.actor.name, 'admin');
    assert.deepEqual(c.target, { kind: 'user', id: created.body.id, name: 'temp-user' });
    assert.equal(c.detail?.role, 'viewer');
    assert.equal(c.detail?.status, 201);
    const d = await entry({ action: 'user.delete', target: created.body.id });
    assert.equal(d.actor.name, 'admin');
    assert.equal(d.outcome, 'ok');
    assert.equal(d.ip, '127.0.0.1');
  });

  it('records API token creation and revocation, and calls made with the token', async () => {
    const token = (await operator.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'ci', expiresInDays: 7 })).body;
    secrets.push(token.token);
    const viaToken = new Api(manager.httpUrl, token.token);
    assert.equal((await viaToken.post('/api/v1/enrollment-tokens', { name: 'via-token' })).status, 201);
    assert.equal((await operator.delete(`/api/v1/api-tokens/${token.id}`)).status, 204);
    const c = await entry({ action: 'token.create', target: token.id });
    assert.equal(c.actor.name, 'olivia');
    assert.equal(c.detail?.name, 'ci');
    const used = await entry({ action: 'enrollment-token.create', actor: token.id });
    assert.deepEqual(used.actor, { kind: 'token', id: token.id, name: 'olivia' });
    const r = await entry({ action: 'token.revoke', target: token.id });
    assert.equal(r.actor.kind, 'user');
    assert.equal(r.actor.name, 'olivia');
  });

  it('records an enrollment (the device as actor), a rename, and VM task create and cancel', async () => {
    const enrollmentToken = await createEnrollmentToken(admin, { maxUses: 5 });
    secrets.push(enrollmentToken);
    const device = await enroll(manager.api, enrollmentToken, 'audit-host');
    secrets.push(device.creds.password);
    const e = await entry({ action: 'device.enroll', target: device.deviceId });
    assert.deepEqual(e.actor, { kind: 'device', id: device.deviceId, name: 'audit-host' });
    assert.equal(e.outcome, 'ok');
    assert.equal(e.ip, '127.0.0.1');

    assert.equal((await operator.patch(`/api/v1/devices/${device.deviceId}`, { name: 'front-desk' })).status, 200);
    const rename = await entry({ action: 'device.rename', target: device.deviceId });
    assert.equal(rename.actor.name, 'olivia');
    assert.deepEqual(rename.target, { kind: 'device', id: device.deviceId, name: 'front-desk' });
    assert.equal(rename.detail?.name, 'front-desk');

    const task = (await operator.post<Task>(`/api/v1/devices/${device.deviceId}/vms`, { name: 'web-1', vcpus: 1, memoryMB: 512, diskGB: 4 })).body;
    const vm = await entry({ action: 'vm.create', target: device.deviceId });
    assert.equal(vm.actor.name, 'olivia');
    assert.equal(vm.detail?.task, task.id);
    assert.equal((await operator.post(`/api/v1/tasks/${task.id}/cancel`)).status, 202);
    const cancel = await entry({ action: 'task.cancel', target: task.id });
    assert.equal(cancel.actor.name, 'olivia');
    assert.equal(cancel.outcome, 'ok');

    // A refused enrollment is recorded too, without the token that was tried.
    expectError(await manager.api.post('/api/v1/enroll', { token: 'pet_guessed-token-value', deviceId: randomUUID(), facts: fakeFacts('intruder') }), 401, 'enrollment_token_invalid');
    const refused = await entry({ action: 'device.enroll' }, (x) => x.outcome !== 'ok');
    assert.equal(refused.outcome, 'denied');
  });

  it('records a call refused for lack of role, and is readable by admins only', async () => {
    expectError(await operator.post('/api/v1/users', { username: 'sneaky', password: 'sneaky-password-1', role: 'admin' }), 403, 'forbidden');
    const denied = await entry({ action: 'user.create', actor: 'olivia' });
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.detail?.status, 403);
    expectError(await operator.get('/api/v1/audit'), 403, 'forbidden', 'admin');
    expectError(await manager.api.get('/api/v1/audit'), 401, 'unauthorized');
  });

  it('lists newest first, filters by time and action prefix, and never holds a secret', async () => {
    const page = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?limit=1000')).body;
    const times = page.items.map((e) => e.at);
    assert.deepEqual(times, [...times].sort().reverse());
    assert.equal((await admin.get<PageOf<AuditEntry>>(`/api/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`)).body.total, 0);
    const users = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?action=user.&limit=1000')).body;
    assert.ok(users.total >= 3 && users.items.every((e) => e.action.startsWith('user.')));
    const text = JSON.stringify(page);
    for (const s of secrets) assert.ok(!text.includes(s), `a secret is in the audit log: ${s.slice(0, 6)}…`);
    expectError(await admin.get('/api/v1/audit?action=user%25'), 400, 'invalid_request', 'action');
    expectError(await admin.get('/api/v1/audit?since=yesterday'), 400, 'invalid_request', 'since');
  });
});
