/**
 * The REST API of a real manager process: error shapes, authentication and roles, users,
 * enrollment tokens and enrollment, the device registry, OpenAPI, health and metrics.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Device, EnrollmentToken, PageOf, User } from '@pallas/protocol';
import { ADMIN_PASSWORD, Api, createEnrollmentToken, startManagerProcess, waitFor, type ManagerProcess } from '@pallas/testkit';
import {
  closeClient, connect, enroll, expectError, fakeFacts, scrape, subackFor, tryConnect, type Enrolled,
} from './support.js';

let manager: ManagerProcess;
let admin: Api;
let operator: Api;
let viewer: Api;
let operatorUser: User;
let viewerUser: User;
const clients: MqttClient[] = [];

/** A random string unique to this run, so filters only see what a test created. */
const unique = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;

async function createUser(username: string, role: User['role'], password = `${username}-password-1`): Promise<User> {
  const res = await admin.post<User>('/api/v1/users', { username, password, role });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  operatorUser = await createUser('op', 'operator');
  viewerUser = await createUser('vi', 'viewer');
  operator = await manager.api.login('op', 'op-password-1');
  viewer = await manager.api.login('vi', 'vi-password-1');
});

after(async () => {
  await Promise.all(clients.map((c) => closeClient(c)));
  await manager?.close();
});

describe('REST errors', () => {
  it('names the offending field on bad input', async () => {
    expectError(await admin.post('/api/v1/users', { username: 'shorty', password: 'short', role: 'viewer' }), 400, 'invalid_request', 'password');
    expectError(await admin.post('/api/v1/users', { username: 'extra', password: 'long-enough-pw', role: 'viewer', shoeSize: 44 }), 400, 'invalid_request', 'shoeSize');
    expectError(await admin.post('/api/v1/users', { username: 'typed', password: 12345678, role: 'viewer' }), 400, 'invalid_request', 'password');
    expectError(await admin.post('/api/v1/users', { username: 'roleless', password: 'long-enough-pw', role: 'root' }), 400, 'invalid_request', 'role');
    expectError(await admin.post('/api/v1/users', { username: 'nopass', role: 'viewer' }), 400, 'invalid_request', 'password');
    expectError(await admin.post('/api/v1/enrollment-tokens', { ttlSec: 5 }), 400, 'invalid_request', 'ttlSec');
    expectError(await admin.get('/api/v1/devices?limit=0'), 400, 'invalid_request', 'limit');
    expectError(await admin.get('/api/v1/devices?limit=many'), 400, 'invalid_request', 'limit');
    expectError(await admin.get('/api/v1/devices?presence=maybe'), 400, 'invalid_request', 'presence');
    expectError(await admin.get(`/api/v1/devices/${'x'.repeat(65)}`), 400, 'invalid_request', 'id');
    expectError(await admin.patch(`/api/v1/users/${viewerUser.id}`, {}), 400, 'invalid_request');
    expectError(await manager.api.post('/api/v1/enroll', { token: 'x'.repeat(20), deviceId: 'not-a-uuid', facts: fakeFacts('h') }), 400, 'invalid_request', 'deviceId');
  });

  it('says what is wrong with an unknown property in words, not schema jargon', async () => {
    const res = await admin.post('/api/v1/users', { username: 'extra', password: 'long-enough-pw', role: 'viewer', shoeSize: 44 });
    expectError(res, 400, 'invalid_request', 'shoeSize');
    assert.doesNotMatch(res.body.error.message, /schema is false/);
    assert.match(res.body.error.message, /allowed|unknown|additional/i);
  });

  it('refuses a body that is not JSON, or too large', async () => {
    expectError(await admin.request('POST', '/api/v1/users', '{"username": "half'), 400, 'invalid_json');
    expectError(await admin.request('POST', '/api/v1/users', '', { 'content-type': 'application/json' }), 400, 'invalid_json');
    const big = JSON.stringify({ username: 'big', password: 'p'.repeat(1024 * 1024 + 1024), role: 'viewer' });
    expectError(await admin.request('POST', '/api/v1/users', big), 413, 'payload_too_large');
    // The manager is still fine afterwards.
    assert.equal((await admin.get('/api/v1/auth/me')).status, 200);
  });

  it('needs a valid bearer token', async () => {
    expectError(await manager.api.get('/api/v1/devices'), 401, 'unauthorized');
    expectError(await manager.api.get('/api/v1/users'), 401, 'unauthorized');
    expectError(await manager.api.get('/api/v1/auth/me'), 401, 'unauthorized');
    expectError(await new Api(manager.httpUrl, 'pls_not-a-real-token').get('/api/v1/devices'), 401, 'unauthorized');
    expectError(await manager.api.request('GET', '/api/v1/devices', undefined, { authorization: 'Basic YWRtaW46YWRtaW4=' }), 401, 'unauthorized');
    expectError(await manager.api.request('GET', '/api/v1/devices', undefined, { authorization: 'Bearer' }), 401, 'unauthorized');
  });

  it('authenticates before it validates: no token is 401 whatever the body', async () => {
    expectError(await manager.api.post('/api/v1/users', { username: 'x', password: 'short', role: 'root' }), 401, 'unauthorized');
    expectError(await manager.api.request('POST', '/api/v1/enrollment-tokens', '{not json'), 401, 'unauthorized');
    const big = JSON.stringify({ name: 'n'.repeat(2 * 1024 * 1024) });
    expectError(await manager.api.request('POST', '/api/v1/enrollment-tokens', big), 401, 'unauthorized');
    expectError(await viewer.post('/api/v1/users', { bogus: true }), 403, 'forbidden');
  });

  it('keeps user administration to admins', async () => {
    const valid = { username: 'sneaky', password: 'sneaky-password', role: 'admin' };
    for (const [who, api] of [['viewer', viewer], ['operator', operator]] as const) {
      expectError(await api.get('/api/v1/users'), 403, 'forbidden', 'admin');
      expectError(await api.post('/api/v1/users', valid), 403, 'forbidden', 'admin');
      // Users may read themselves (docs/access-control.md), never anyone else.
      const other = who === 'viewer' ? operatorUser : viewerUser;
      expectError(await api.get(`/api/v1/users/${other.id}`), 403, 'forbidden');
      expectError(await api.patch(`/api/v1/users/${viewerUser.id}`, { role: 'admin' }), 403, 'forbidden');
      expectError(await api.patch(`/api/v1/users/${operatorUser.id}`, { role: 'admin' }), 403, 'forbidden');
      expectError(await api.delete(`/api/v1/users/${viewerUser.id}`), 403, 'forbidden');
      assert.equal((await api.get('/api/v1/auth/me')).body.role, who);
    }
    // Nothing of that happened.
    const users = await admin.get<PageOf<User>>('/api/v1/users');
    assert.deepEqual(users.body.items.map((u) => [u.username, u.role]), [['admin', 'admin'], ['op', 'operator'], ['vi', 'viewer']]);
  });

  it('lets operators, not viewers, handle enrollment tokens and devices', async () => {
    const created = await operator.post('/api/v1/enrollment-tokens', { name: 'by-operator' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.createdBy, 'op');
    assert.equal((await operator.get('/api/v1/enrollment-tokens')).status, 200);
    expectError(await viewer.post('/api/v1/enrollment-tokens', { name: 'by-viewer' }), 403, 'forbidden', 'operator');
    expectError(await viewer.get('/api/v1/enrollment-tokens'), 403, 'forbidden');
    expectError(await viewer.delete(`/api/v1/enrollment-tokens/${created.body.id}`), 403, 'forbidden');
    const id = randomUUID();
    expectError(await viewer.patch(`/api/v1/devices/${id}`, { name: 'x' }), 403, 'forbidden');
    expectError(await viewer.delete(`/api/v1/devices/${id}`), 403, 'forbidden');
    assert.equal((await viewer.get('/api/v1/devices')).status, 200);
  });

  it('answers unknown routes and ids with a JSON 404', async () => {
    expectError(await admin.get('/api/v1/nothing-here'), 404, 'not_found');
    expectError(await manager.api.get('/nothing-here'), 404, 'not_found');
    expectError(await admin.request('PUT', '/api/v1/devices'), 404, 'not_found');
    const id = randomUUID();
    expectError(await admin.get(`/api/v1/devices/${id}`), 404, 'not_found', id);
    expectError(await admin.patch(`/api/v1/devices/${id}`, { name: 'ghost' }), 404, 'not_found', id);
    expectError(await admin.delete(`/api/v1/devices/${id}`), 404, 'not_found', id);
    expectError(await admin.get(`/api/v1/users/${id}`), 404, 'not_found', id);
    expectError(await admin.patch(`/api/v1/users/${id}`, { role: 'viewer' }), 404, 'not_found', id);
    expectError(await admin.delete(`/api/v1/users/${id}`), 404, 'not_found', id);
    expectError(await admin.delete(`/api/v1/enrollment-tokens/${id}`), 404, 'not_found', id);
  });
});

describe('users and sessions', () => {
  it('creates, lists, gets, patches and deletes a user', async () => {
    const created = await admin.post<User>('/api/v1/users', { username: 'alice', password: 'alice-password', role: 'operator' });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.body).sort(), ['createdAt', 'id', 'role', 'username'], 'no password or hash in the response');
    assert.equal(created.body.username, 'alice');
    assert.equal(created.body.role, 'operator');
    const alice = created.body;

    const list = await admin.get<PageOf<User>>('/api/v1/users');
    assert.equal(list.status, 200);
    assert.ok(list.body.items.some((u) => u.id === alice.id));
    assert.equal(list.body.total, list.body.items.length);
    assert.ok(!JSON.stringify(list.body).includes('password'));
    const page = await admin.get<PageOf<User>>('/api/v1/users?limit=1&offset=1');
    assert.equal(page.body.items.length, 1);
    assert.equal(page.body.items[0]!.id, list.body.items[1]!.id);
    assert.equal(page.body.total, list.body.total);

    assert.deepEqual((await admin.get<User>(`/api/v1/users/${alice.id}`)).body, alice);

    const demoted = await admin.patch<User>(`/api/v1/users/${alice.id}`, { role: 'viewer' });
    assert.equal(demoted.status, 200);
    assert.equal(demoted.body.role, 'viewer');
    const asAlice = await manager.api.login('alice', 'alice-password');
    assert.equal((await asAlice.get<User>('/api/v1/auth/me')).body.role, 'viewer');

    expectError(await admin.post('/api/v1/users', { username: 'alice', password: 'another-password', role: 'admin' }), 409, 'conflict', 'alice');

    assert.equal((await admin.delete(`/api/v1/users/${alice.id}`)).status, 204);
    expectError(await admin.get(`/api/v1/users/${alice.id}`), 404, 'not_found');
    expectError(await asAlice.get('/api/v1/auth/me'), 401, 'unauthorized');
    expectError(await manager.api.post('/api/v1/auth/login', { username: 'alice', password: 'alice-password' }), 401, 'invalid_credentials');
  });

  it('never removes or demotes the last admin', async () => {
    const me = (await admin.get<User>('/api/v1/auth/me')).body;
    assert.equal(me.role, 'admin');
    expectError(await admin.delete(`/api/v1/users/${me.id}`), 409, 'conflict', 'last admin');
    expectError(await admin.patch(`/api/v1/users/${me.id}`, { role: 'operator' }), 409, 'conflict', 'last admin');
    assert.equal((await admin.get<User>('/api/v1/auth/me')).body.role, 'admin');

    // With a second admin either may step down; then the remaining one is the last again.
    const second = await createUser('second-admin', 'admin');
    const stepDown = await admin.patch<User>(`/api/v1/users/${second.id}`, { role: 'viewer' });
    assert.equal(stepDown.status, 200, JSON.stringify(stepDown.body));
    assert.equal(stepDown.body.role, 'viewer');
    expectError(await admin.delete(`/api/v1/users/${me.id}`), 409, 'conflict', 'last admin');
    assert.equal((await admin.delete(`/api/v1/users/${second.id}`)).status, 204);
  });

  it('invalidates sessions when the password changes', async () => {
    const bob = await createUser('bob', 'viewer', 'bob-password-1');
    const first = await manager.api.login('bob', 'bob-password-1');
    const second = await manager.api.login('bob', 'bob-password-1');
    assert.equal((await first.get('/api/v1/auth/me')).status, 200);

    const patched = await admin.patch<User>(`/api/v1/users/${bob.id}`, { password: 'bob-password-2' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.role, 'viewer', 'role unchanged');
    expectError(await first.get('/api/v1/auth/me'), 401, 'unauthorized');
    expectError(await second.get('/api/v1/devices'), 401, 'unauthorized');
    expectError(await manager.api.post('/api/v1/auth/login', { username: 'bob', password: 'bob-password-1' }), 401, 'invalid_credentials');
    const fresh = await manager.api.login('bob', 'bob-password-2');
    assert.equal((await fresh.get<User>('/api/v1/auth/me')).body.id, bob.id);
    assert.equal((await admin.delete(`/api/v1/users/${bob.id}`)).status, 204);
  });

  it('logs in, says who is logged in, and logs out', async () => {
    const login = await manager.api.post('/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(login.status, 200);
    assert.equal(typeof login.body.token, 'string');
    assert.ok(Date.parse(login.body.expiresAt) > Date.now());
    assert.equal(login.body.user.username, 'admin');
    const session = new Api(manager.httpUrl, login.body.token);

    const me = await session.get<User>('/api/v1/auth/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, login.body.user);
    assert.deepEqual((await viewer.get<User>('/api/v1/auth/me')).body, viewerUser);

    assert.equal((await session.post('/api/v1/auth/logout')).status, 204);
    expectError(await session.get('/api/v1/auth/me'), 401, 'unauthorized');
    expectError(await session.post('/api/v1/auth/logout'), 401, 'unauthorized');
    // Other sessions of the same user are not affected.
    assert.equal((await admin.get('/api/v1/auth/me')).status, 200);
  });

  it('refuses wrong passwords and unknown users alike', async () => {
    const wrong = await manager.api.post('/api/v1/auth/login', { username: 'admin', password: 'not-the-password' });
    expectError(wrong, 401, 'invalid_credentials');
    const unknown = await manager.api.post('/api/v1/auth/login', { username: 'nobody', password: 'not-the-password' });
    expectError(unknown, 401, 'invalid_credentials');
    assert.equal(wrong.body.error.message, unknown.body.error.message, 'does not tell which was wrong');
  });
});

describe('enrollment tokens and enrollment', () => {
  it('shows a token secret once and never lists it', async () => {
    const created = await admin.post('/api/v1/enrollment-tokens', { name: 'rack-7', ttlSec: 3600, maxUses: 3 });
    assert.equal(created.status, 201);
    const secret = created.body.token as string;
    assert.match(secret, /^pet_[A-Za-z0-9_-]{40,}$/);
    assert.equal(created.body.name, 'rack-7');
    assert.equal(created.body.maxUses, 3);
    assert.equal(created.body.uses, 0);
    assert.equal(created.body.revoked, false);
    assert.equal(created.body.createdBy, 'admin');
    const ttl = Date.parse(created.body.expiresAt) - Date.parse(created.body.createdAt);
    assert.equal(ttl, 3600_000);

    const list = await admin.get<PageOf<EnrollmentToken>>('/api/v1/enrollment-tokens');
    assert.equal(list.status, 200);
    const listed = list.body.items.find((t) => t.id === created.body.id);
    assert.ok(listed, 'the new token is listed');
    const { token: _secret, ...withoutSecret } = created.body;
    assert.deepEqual(listed, withoutSecret);
    for (const item of list.body.items) assert.ok(!('token' in item), 'no secret in the list');
    assert.ok(!JSON.stringify(list.body).includes(secret), 'the secret appears nowhere in the list');
    assert.equal(list.body.total, list.body.items.length);
  });

  it('refuses revoked, unknown and used-up tokens', async () => {
    const created = await admin.post('/api/v1/enrollment-tokens', { name: 'to-revoke', maxUses: 10 });
    assert.equal((await admin.delete(`/api/v1/enrollment-tokens/${created.body.id}`)).status, 204);
    const listed = (await admin.get<PageOf<EnrollmentToken>>('/api/v1/enrollment-tokens')).body.items.find((t) => t.id === created.body.id);
    assert.equal(listed?.revoked, true);
    const body = (token: string) => ({ token, deviceId: randomUUID(), facts: fakeFacts('refused-host') });
    expectError(await manager.api.post('/api/v1/enroll', body(created.body.token)), 401, 'enrollment_token_invalid');
    expectError(await manager.api.post('/api/v1/enroll', body(`pet_${randomBytes(32).toString('base64url')}`)), 401, 'enrollment_token_invalid');

    const once = await createEnrollmentToken(admin, { name: 'single-use', maxUses: 1 });
    const first = await manager.api.post('/api/v1/enroll', body(once));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    expectError(await manager.api.post('/api/v1/enroll', body(once)), 401, 'enrollment_token_invalid');
    const tokens = (await admin.get<PageOf<EnrollmentToken>>('/api/v1/enrollment-tokens')).body.items;
    assert.equal(tokens.find((t) => t.name === 'single-use')?.uses, 1);
    // None of the refused attempts left a device behind.
    const named = await admin.get<PageOf<Device>>('/api/v1/devices?name=refused-host');
    assert.equal(named.body.total, 1, 'only the one accepted enrollment');
  });

  it('refuses to hand an enrolled device id to someone without its secret', async () => {
    const token = await admin.post('/api/v1/enrollment-tokens', { name: 'conflict', maxUses: 5 });
    const original = await enroll(manager.api, token.body.token, unique('orig-'));

    const claim = (secret?: string) => manager.api.post('/api/v1/enroll', {
      token: token.body.token, deviceId: original.deviceId, facts: fakeFacts('impostor'), ...(secret ? { secret } : {}),
    });
    expectError(await claim(), 409, 'device_id_conflict', original.deviceId);
    expectError(await claim(`pds_${randomBytes(32).toString('base64url')}`), 409, 'device_id_conflict');
    expectError(await claim(original.creds.password.slice(0, -1)), 409, 'device_id_conflict');

    // The device is untouched, no token use was spent, and its credential still works.
    const device = (await admin.get<Device>(`/api/v1/devices/${original.deviceId}`)).body;
    assert.equal(device.name, original.hostname);
    assert.equal(device.facts?.hostname, original.hostname);
    const listed = (await admin.get<PageOf<EnrollmentToken>>('/api/v1/enrollment-tokens')).body.items.find((t) => t.id === token.body.id);
    assert.equal(listed?.uses, 1);
    const client = await connect(manager.mqttUrl, original.creds);
    await closeClient(client);

    // With its current secret the device re-enrolls (keeping its id) and the old secret stops working.
    const again = await claim(original.creds.password);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.deviceId, original.deviceId);
    assert.notEqual(again.body.mqtt.password, original.creds.password);
    const old = await tryConnect(manager.mqttUrl, original.creds);
    assert.equal(old.ok, false);
    if (!old.ok) assert.equal(old.code, 4, old.message);
    const renewed = await connect(manager.mqttUrl, { ...original.creds, password: again.body.mqtt.password });
    await closeClient(renewed);
  });
});

describe('devices', () => {
  const prefix = unique('fleet-');
  let devices: Enrolled[];
  let tag: string;

  before(async () => {
    const token = await createEnrollmentToken(operator, { name: 'devices', maxUses: 3 });
    devices = [];
    for (const name of ['Alpha-1', 'alpha-2', 'beta-3']) devices.push(await enroll(manager.api, token, `${prefix}-${name}`));
    tag = `site=${prefix}`;
  });

  const ids = (page: PageOf<Device>) => page.items.map((d) => d.id).sort();
  const idsOf = (...i: number[]) => i.map((n) => devices[n]!.deviceId).sort();

  it('lists enrolled devices with their facts, in pages', async () => {
    const one = await viewer.get<Device>(`/api/v1/devices/${devices[0]!.deviceId}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.name, `${prefix}-Alpha-1`);
    assert.equal(one.body.presence, 'offline');
    assert.equal(one.body.lastSeenAt, null);
    assert.deepEqual(one.body.facts, fakeFacts(`${prefix}-Alpha-1`));
    assert.deepEqual(one.body.vms, []);
    assert.deepEqual(one.body.tags, []);

    const all = await viewer.get<PageOf<Device>>('/api/v1/devices');
    assert.equal(all.body.limit, 50);
    assert.equal(all.body.offset, 0);
    assert.ok(all.body.total >= 3);
    assert.equal(all.body.items.length, all.body.total);

    const q = `name=${encodeURIComponent(prefix)}`;
    const p1 = await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&limit=2`);
    const p2 = await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&limit=2&offset=2`);
    const p3 = await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&limit=2&offset=4`);
    assert.deepEqual([p1.body.total, p1.body.limit, p1.body.offset, p1.body.items.length], [3, 2, 0, 2]);
    assert.deepEqual([p2.body.total, p2.body.limit, p2.body.offset, p2.body.items.length], [3, 2, 2, 1]);
    assert.deepEqual([p3.body.total, p3.body.items.length], [3, 0]);
    assert.deepEqual([...ids(p1.body), ...ids(p2.body)].sort(), idsOf(0, 1, 2), 'pages cover every device once');
  });

  it('filters by name substring, case-insensitively and literally', async () => {
    const byName = async (name: string) => (await viewer.get<PageOf<Device>>(`/api/v1/devices?name=${encodeURIComponent(name)}`)).body;
    assert.deepEqual(ids(await byName(`${prefix}-ALPHA`)), idsOf(0, 1));
    assert.deepEqual(ids(await byName(`${prefix.toUpperCase()}-alpha-`)), idsOf(0, 1));
    assert.deepEqual(ids(await byName(`${prefix}-bEtA`)), idsOf(2));
    assert.equal((await byName(`${prefix}_alpha`)).total, 0, '_ is not a wildcard');
    assert.equal((await byName(`${prefix}%`)).total, 0, '% is not a wildcard');
    assert.equal((await byName(`${prefix}-gamma`)).total, 0);
  });

  it('filters by hypervisor kind', async () => {
    const q = `name=${encodeURIComponent(prefix)}`;
    assert.deepEqual(ids((await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&hypervisor=sim`)).body), idsOf(0, 1, 2));
    assert.equal((await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&hypervisor=esxi`)).body.total, 0);
    expectError(await viewer.get('/api/v1/devices?hypervisor=vmware'), 400, 'invalid_request', 'hypervisor');
  });

  it('tags and renames a device, and filters by tag', async () => {
    const target = devices[1]!.deviceId;
    const tagged = await operator.patch<Device>(`/api/v1/devices/${target}`, { tags: [tag, 'rack:7'] });
    assert.equal(tagged.status, 200, JSON.stringify(tagged.body));
    assert.deepEqual([...tagged.body.tags].sort(), ['rack:7', tag].sort());
    const byTag = await viewer.get<PageOf<Device>>(`/api/v1/devices?tag=${encodeURIComponent(tag)}`);
    assert.deepEqual(ids(byTag.body), [target]);
    expectError(await operator.patch(`/api/v1/devices/${target}`, { tags: ['no spaces allowed'] }), 400, 'invalid_request', 'tags');
    expectError(await operator.patch(`/api/v1/devices/${target}`, { tags: ['dup', 'dup'] }), 400, 'invalid_request', 'tags');

    const renamed = await operator.patch<Device>(`/api/v1/devices/${target}`, { name: `${prefix}-Renamed` });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.name, `${prefix}-Renamed`);
    assert.deepEqual([...renamed.body.tags].sort(), ['rack:7', tag].sort(), 'renaming keeps the tags');
    assert.equal((await viewer.get<Device>(`/api/v1/devices/${target}`)).body.name, `${prefix}-Renamed`);
    const byNew = await viewer.get<PageOf<Device>>(`/api/v1/devices?name=${encodeURIComponent(`${prefix}-renamed`)}`);
    assert.deepEqual(ids(byNew.body), [target]);
    const byOld = await viewer.get<PageOf<Device>>(`/api/v1/devices?name=${encodeURIComponent(`${prefix}-alpha`)}`);
    assert.deepEqual(ids(byOld.body), idsOf(0));

    const cleared = await operator.patch<Device>(`/api/v1/devices/${target}`, { tags: [] });
    assert.deepEqual(cleared.body.tags, []);
    assert.equal((await viewer.get<PageOf<Device>>(`/api/v1/devices?tag=${encodeURIComponent(tag)}`)).body.total, 0);
    await operator.patch(`/api/v1/devices/${target}`, { tags: [tag] });
  });

  it('filters by presence once a device says it is online', async () => {
    const online = devices[2]!;
    const client = await connect(manager.mqttUrl, online.creds);
    clients.push(client);
    await client.publishAsync(`pallas/v1/d/${online.deviceId}/presence`, JSON.stringify({ state: 'online', at: new Date().toISOString(), agentVersion: '0.1.0' }), { qos: 1 });
    await waitFor('presence online', async () => (await viewer.get<Device>(`/api/v1/devices/${online.deviceId}`)).body.presence === 'online');
    const q = `name=${encodeURIComponent(prefix)}`;
    assert.deepEqual(ids((await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&presence=online`)).body), [online.deviceId]);
    assert.deepEqual(ids((await viewer.get<PageOf<Device>>(`/api/v1/devices?${q}&presence=offline`)).body), idsOf(0, 1));
    const both = await viewer.get<PageOf<Device>>(`/api/v1/devices?presence=offline&tag=${encodeURIComponent(tag)}`);
    assert.deepEqual(ids(both.body), idsOf(1), 'filters combine');
  });

  it('decommissions a device: gone from the API, its credential refused, its agent told', async () => {
    // An idle device: its credential worked until now.
    const idle = devices[0]!;
    await closeClient(await connect(manager.mqttUrl, idle.creds));
    const del = await operator.delete(`/api/v1/devices/${idle.deviceId}`);
    assert.equal(del.status, 204);
    assert.equal(del.body, undefined, 'no body');
    expectError(await viewer.get(`/api/v1/devices/${idle.deviceId}`), 404, 'not_found');
    expectError(await operator.delete(`/api/v1/devices/${idle.deviceId}`), 404, 'not_found');
    const refused = await tryConnect(manager.mqttUrl, idle.creds);
    assert.equal(refused.ok, false, 'the deleted device can no longer connect');
    if (!refused.ok) assert.equal(refused.code, 4, refused.message);

    // A connected device receives the decommission command and is cut off.
    const live = devices[2]!;
    const client = await connect(manager.mqttUrl, live.creds);
    clients.push(client);
    assert.equal(await subackFor(client, `pallas/v1/d/${live.deviceId}/cmd/#`), 1);
    const command = new Promise<{ topic: string; body: unknown }>((resolve) => {
      client.once('message', (topic, payload) => resolve({ topic, body: JSON.parse(payload.toString()) }));
    });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    assert.equal((await operator.delete(`/api/v1/devices/${live.deviceId}`)).status, 204);
    const got = await command;
    assert.equal(got.topic, `pallas/v1/d/${live.deviceId}/cmd/control`);
    assert.equal((got.body as { type: string }).type, 'decommission');
    await closed;
    const again = await tryConnect(manager.mqttUrl, live.creds);
    assert.equal(again.ok, false);
    if (!again.ok) assert.equal(again.code, 4, again.message);

    const rest = await viewer.get<PageOf<Device>>(`/api/v1/devices?name=${encodeURIComponent(prefix)}`);
    assert.deepEqual(ids(rest.body), idsOf(1));
  });
});

describe('OpenAPI, health and metrics', () => {
  it('serves the OpenAPI document', async () => {
    const res = await manager.api.get('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.body.openapi, /^3\./);
    for (const path of ['/api/v1/devices', '/api/v1/devices/{id}', '/api/v1/users', '/api/v1/auth/login', '/api/v1/enrollment-tokens', '/api/v1/enroll']) {
      assert.ok(res.body.paths[path], `OpenAPI has ${path}`);
    }
    assert.ok(res.body.paths['/api/v1/users'].post, 'POST /users is documented');
    for (const path of ['/api/v1/devices/{id}/agent-update', '/api/v1/devices/{id}/patch']) {
      assert.ok(res.body.paths[path]?.post?.requestBody, `OpenAPI documents POST ${path} with its body`);
      assert.ok(res.body.paths[path].post.responses['202'], `POST ${path} answers 202 with the task`);
    }
  });

  it('answers health and readiness probes', async () => {
    const health = await manager.api.get('/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
    const ready = await manager.api.get('/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
  });

  it('exposes Prometheus metrics', async () => {
    const res = await manager.api.get<string>('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    for (const name of ['pallas_devices_connected', 'pallas_mqtt_messages_received_total', 'pallas_mqtt_rejected_total', 'pallas_http_request_duration_seconds']) {
      assert.ok(res.body.includes(name), `metrics include ${name}`);
    }
    const samples = await scrape(manager.api);
    const presence = samples.find((s) => s.name === 'pallas_mqtt_messages_received_total' && s.labels.channel === 'presence');
    assert.ok(presence && presence.value >= 1, 'the presence message of the devices test was counted');
    assert.ok(samples.some((s) => s.name === 'pallas_http_request_duration_seconds_count' && s.labels.route === '/api/v1/devices' && s.value > 0));
  });
});
