/**
 * Issue #18 points 1, 8 and 9 at the API, on SQLite and PostgreSQL: tasks carry the device's,
 * the VM's and the artifact's names (and the task list filters by a device's name); devices
 * that share a name are flagged until one is renamed; the audit log names its targets, says
 * why a refused call was refused, shows the current outcome of the task a request started
 * (a late result included), hides sign-ins on request, filters targets by name, and exports
 * the same filters as CSV and JSON.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { AuditEntry, Device, PageOf, SignedArtifact, Task, TaskResult } from '@pallas/protocol';
import { ADMIN_PASSWORD, Api, createEnrollmentToken, startManagerProcess, tarOf, waitFor, type ManagerProcess } from '@pallas/testkit';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';
import { closeClient, connect, enroll, expectError, fakeFacts, fakeVm, statusMessage, type Enrolled } from './support.js';

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

const targets: Array<[string, () => Promise<StoreTarget>, false | string]> = [
  ['sqlite', sqliteTarget, false],
  ['postgres', () => postgresTarget(PG_URL!), pgSkip()],
];

for (const [dbName, makeTarget, skip] of targets) describe(`names and the audit log (${dbName})`, { skip }, () => {
  let target: StoreTarget;
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  let device: Enrolled;
  let client: MqttClient | undefined;

  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  const audit = async (qs: Record<string, string>): Promise<PageOf<AuditEntry>> => {
    const res = await admin.get<PageOf<AuditEntry>>(`/api/v1/audit?${new URLSearchParams({ limit: '200', ...qs })}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const result = async (taskId: string, outcome: TaskResult['outcome'], extra: Partial<TaskResult> = {}) => {
    const r: TaskResult = { taskId, outcome, finishedAt: new Date().toISOString(), ...extra };
    await client!.publishAsync(topic(device.deviceId, 'task/result'), JSON.stringify(r), { qos: 1 });
  };

  before(async () => {
    target = await makeTarget();
    manager = await startManagerProcess({ args: ['--task-sweep-ms', '100'], database: { url: target.url } });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { name: 'names', maxUses: 10 });
    device = await enroll(manager.api, token, 'edge-names-01');
    client = await connect(manager.mqttUrl, device.creds);
    await client.subscribeAsync(topic(device.deviceId, 'cmd/#'), { qos: 1 });
    await client.publishAsync(topic(device.deviceId, 'presence'), JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    // The inventory every sim device has: vm-104, here named web-104.
    await client.publishAsync(topic(device.deviceId, 'status'), JSON.stringify(statusMessage(1, fakeFacts('edge-names-01'), [fakeVm('vm-104', 'web-104')])), { qos: 1 });
    await waitFor('inventory', async () => (await admin.get<Device>(`/api/v1/devices/${device.deviceId}`)).body.vms.length === 1);
  });

  after(async () => {
    await closeClient(client);
    await manager?.close();
    await target?.dispose();
  });

  it('tasks carry the device, VM and artifact names; the list filters by a device name', async () => {
    const created = (await admin.post<Task>(`/api/v1/devices/${device.deviceId}/vms`, { name: 'db-1', vcpus: 1, memoryMB: 256, diskGB: 1 })).body;
    assert.equal(created.deviceName, 'edge-names-01');
    assert.equal(created.vmName, 'db-1');
    const power = await admin.post<Task>(`/api/v1/devices/${device.deviceId}/vms/vm-104/power`, { action: 'on' });
    assert.equal(power.status, 202, JSON.stringify(power.body));
    assert.equal(power.body.vmName, 'web-104');
    assert.equal((await task(power.body.id)).vmName, 'web-104', 'stored, not only in the answer');

    // An OVA as far as the upload check goes: a tar with a descriptor of one VM without disks.
    const bytes = tarOf([{ name: 'ubuntu.ovf', data: '<Envelope><VirtualSystem id="ubuntu"/></Envelope>' }]);
    const up = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=ova&name=ubuntu&version=24.04`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token!}`, 'content-type': 'application/octet-stream' }, body: bytes,
    });
    assert.equal(up.status, 201, await up.clone().text());
    const art = (await up.json()) as SignedArtifact;
    const deploy = await admin.post<Task>(`/api/v1/devices/${device.deviceId}/vms/deploy`, { source: { kind: 'artifact', artifactId: art.id }, name: 'app-1' });
    assert.equal(deploy.status, 202, JSON.stringify(deploy.body));
    assert.equal(deploy.body.artifactName, 'ubuntu');
    assert.equal(deploy.body.artifactVersion, '24.04');
    assert.equal(deploy.body.vmName, 'app-1');

    const byName = (await admin.get<PageOf<Task>>('/api/v1/tasks?device=edge-names-01')).body;
    assert.equal(byName.total, 3);
    assert.ok(byName.items.every((t) => t.deviceId === device.deviceId && t.deviceName === 'edge-names-01'));
    assert.equal((await admin.get<PageOf<Task>>(`/api/v1/tasks?device=${device.deviceId}`)).body.total, 3);
    assert.equal((await admin.get<PageOf<Task>>('/api/v1/tasks?device=edge-names')).body.total, 0, 'a name matches exactly');
  });

  it('flags devices that share a name until one is renamed', async () => {
    const a = await enroll(manager.api, token, 'shop-7');
    const b = await enroll(manager.api, token, 'shop-7');
    const flags = async (id: string) => (await admin.get<Device>(`/api/v1/devices/${id}`)).body.flags;
    assert.deepEqual(await flags(a.deviceId), ['duplicate_name']);
    assert.deepEqual(await flags(b.deviceId), ['duplicate_name']);
    const list = (await admin.get<PageOf<Device>>('/api/v1/devices?name=shop-7')).body.items;
    assert.ok(list.every((d) => d.flags.includes('duplicate_name')));
    assert.deepEqual(await flags(device.deviceId), []);
    assert.equal((await admin.patch<Device>(`/api/v1/devices/${b.deviceId}`, { name: 'shop-7b' })).status, 200);
    assert.deepEqual(await flags(a.deviceId), []);
    assert.deepEqual(await flags(b.deviceId), []);
  });

  it("shows a task's current outcome beside the request that started it, and a late result", async () => {
    const power = (await admin.post<Task>(`/api/v1/devices/${device.deviceId}/vms/vm-104/power`, { action: 'off' })).body;
    await waitFor('sent', async () => (await task(power.id)).state === 'sent');
    await result(power.id, 'failed', { error: { code: 'host_error', message: 'the host said no' } });
    await waitFor('failed', async () => (await task(power.id)).state === 'failed');
    const entry = await waitFor('audit entry', async () => (await audit({ action: 'vm.power' })).items.find((e) => e.detail?.task === power.id) ?? false);
    assert.equal(entry.outcome, 'ok', 'the request itself was accepted');
    assert.deepEqual(entry.target, { kind: 'vm', id: 'vm-104', name: 'web-104' });
    assert.equal(entry.detail?.deviceName, 'edge-names-01');
    assert.deepEqual(entry.task, { id: power.id, state: 'failed', error: { code: 'host_error', message: 'the host said no' } });

    const late = (await admin.post<Task>(`/api/v1/devices/${device.deviceId}/vms/vm-104/power?timeoutSec=1`, { action: 'reset' })).body;
    await waitFor('timed out', async () => (await task(late.id)).state === 'timed_out');
    await result(late.id, 'succeeded', { vm: fakeVm('vm-104', 'web-104') });
    await waitFor('late result', async () => (await task(late.id)).lateResult?.outcome === 'succeeded');
    const lateEntry = (await audit({ action: 'vm.power' })).items.find((e) => e.detail?.task === late.id);
    assert.equal(lateEntry?.task?.state, 'timed_out');
    assert.equal(lateEntry?.task?.lateOutcome, 'succeeded');
  });

  it('says why a refused request was refused', async () => {
    const ghost = '00000000-0000-4000-8000-00000000dead';
    expectError(await admin.post(`/api/v1/devices/${ghost}/vms/vm-999/power`, { action: 'on' }), 404, 'not_found');
    const refused = await waitFor('refused entry', async () => (await audit({ action: 'vm.power', outcome: 'failed' })).items[0] ?? false);
    assert.equal(refused.reason?.code, 'not_found');
    assert.match(refused.reason!.message, new RegExp(ghost));
    const viewer = await manager.api.login(...(await newViewer(admin)));
    expectError(await viewer.post('/api/v1/enrollment-tokens', { name: 'nope' }), 403, 'forbidden');
    const denied = await waitFor('denied entry', async () => (await audit({ action: 'enrollment-token.create', outcome: 'denied' })).items[0] ?? false);
    assert.equal(denied.reason?.code, 'forbidden');
  });

  it('hides sign-ins on request and filters targets by name', async () => {
    // The sign-in's record is written just after its answer: wait for it, so that both reads
    // below see the same log.
    const signIns = async () => (await audit({ action: 'login.ok' })).total;
    const before = await signIns();
    await manager.api.login('admin', ADMIN_PASSWORD);
    await waitFor('the sign-in recorded', async () => (await signIns()) > before);
    const all = await audit({});
    assert.ok(all.items.some((e) => e.action === 'login.ok'));
    const quiet = await audit({ exclude: 'login.,logout' });
    assert.ok(quiet.total > 0);
    assert.ok(quiet.items.every((e) => !e.action.startsWith('login.') && e.action !== 'logout'), JSON.stringify(quiet.items.map((e) => e.action)));
    assert.equal(quiet.total, all.total - all.items.filter((e) => e.action.startsWith('login.') || e.action === 'logout').length);
    const byName = await audit({ target: 'web-104' });
    assert.ok(byName.total >= 3 && byName.items.every((e) => e.target?.id === 'vm-104'));
    expectError(await admin.get('/api/v1/audit?exclude=login.;drop'), 400, 'invalid_request');
  });

  it('exports the filtered log as CSV and as JSON, streamed', async () => {
    const res = await fetch(`${manager.httpUrl}/api/v1/audit/export?format=csv&action=vm.power`, { headers: { authorization: `Bearer ${admin.token!}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
    assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename="pallas-audit-.*\.csv"/);
    const lines = (await res.text()).trimEnd().split('\r\n');
    assert.equal(lines[0], 'id,at,actor_kind,actor_id,actor_name,action,target_kind,target_id,target_name,outcome,reason,task_id,task_state,ip,detail');
    const page = await audit({ action: 'vm.power' });
    assert.equal(lines.length - 1, page.total);
    assert.ok(lines.slice(1).every((l) => l.includes(',vm.power,')));
    assert.ok(lines.some((l) => l.includes(',failed,') || l.includes('timed_out (late result: succeeded)')));

    const json = await fetch(`${manager.httpUrl}/api/v1/audit/export?format=json&exclude=login.,logout`, { headers: { authorization: `Bearer ${admin.token!}` } });
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    const entries = (await json.json()) as AuditEntry[];
    assert.equal(entries.length, (await audit({ exclude: 'login.,logout', limit: '1' })).total);
    assert.ok(entries.every((e) => !e.action.startsWith('login.')));
    assert.deepEqual(entries.map((e) => e.id), [...entries.map((e) => e.id)].sort().reverse(), 'newest first');

    const none = await fetch(`${manager.httpUrl}/api/v1/audit/export?format=json&since=2100-01-01T00:00:00Z`, { headers: { authorization: `Bearer ${admin.token!}` } });
    assert.deepEqual(await none.json(), []);
    const viewer = await manager.api.login(...(await newViewer(admin)));
    expectError(await viewer.get('/api/v1/audit/export'), 403, 'forbidden');
  });
});

let viewers = 0;
/** A new viewer's user name and password. */
async function newViewer(admin: Api): Promise<[string, string]> {
  const username = `viewer-${++viewers}-${Date.now().toString(36)}`;
  const password = 'viewer-password-123';
  assert.equal((await admin.post('/api/v1/users', { username, password, role: 'viewer' })).status, 201);
  return [username, password];
}
