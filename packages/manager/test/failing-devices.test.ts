/**
 * GET /fleet/failing-devices (the console overview's "Failing devices") against a real manager
 * process: devices played over MQTT fail tasks (an error the device reports, a missed
 * deadline), succeed others; the route ranks devices by tasks failed or timed out in the
 * range, names each with its commonest error code, honours `from` and `limit`, and leaves out
 * decommissioned devices. The PostgreSQL pass runs it on PostgreSQL too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { FailingDevices, Task, TaskResult } from '@pallas/protocol';
import { createEnrollmentToken, startManagerProcess, waitFor, type Api, type ManagerProcess } from '@pallas/testkit';
import { closeClient, connect, enroll, expectError, type Enrolled } from './support.js';

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

describe('failing devices', () => {
  let manager: ManagerProcess;
  let admin: Api;
  const devices: Record<string, Enrolled> = {};
  const clients: MqttClient[] = [];
  const client: Record<string, MqttClient> = {};

  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  /** A power task on `name`'s VM that ends as the device says (or times out, for `undefined`). */
  const run = async (name: string, outcome: TaskResult['outcome'] | undefined, code?: string): Promise<Task> => {
    const id = devices[name]!.deviceId;
    const res = await admin.post<Task>(`/api/v1/devices/${id}/vms/vm-1/power${outcome ? '' : '?timeoutSec=1'}`, { action: 'on' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitFor('sent', async () => (await task(res.body.id)).state === 'sent');
    if (outcome) {
      const r: TaskResult = { taskId: res.body.id, outcome, finishedAt: new Date().toISOString(), ...(code ? { error: { code, message: code } } : {}) };
      await client[name]!.publishAsync(topic(id, 'task/result'), JSON.stringify(r), { qos: 1 });
    }
    const want = outcome ?? 'timed_out';
    return waitFor(`task ${want}`, async () => { const t = await task(res.body.id); return t.state === want && t; });
  };
  const failing = async (query = '') => {
    const res = await admin.get<FailingDevices>(`/api/v1/fleet/failing-devices${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    manager = await startManagerProcess({ args: ['--task-sweep-ms', '100'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 10 });
    for (const name of ['edge-flaky', 'edge-broken', 'edge-fine', 'edge-gone']) {
      const d = await enroll(manager.api, token, name);
      devices[name] = d;
      const c = await connect(manager.mqttUrl, d.creds);
      clients.push(c);
      client[name] = c;
      await c.subscribeAsync(topic(d.deviceId, 'cmd/#'), { qos: 1 });
      await c.publishAsync(topic(d.deviceId, 'presence'), JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    }
  });
  after(async () => {
    for (const c of clients) await closeClient(c);
    await manager?.close();
  });

  it('ranks devices by tasks failed or timed out, with their commonest error code', async () => {
    assert.deepEqual((await failing()).items, [], 'nothing failed yet');
    const before = new Date().toISOString();
    await run('edge-broken', 'failed', 'host_error');
    await run('edge-broken', 'failed', 'host_error');
    await run('edge-broken', undefined); // timed_out
    await run('edge-flaky', 'failed', 'not_found');
    await run('edge-fine', 'succeeded');
    await run('edge-gone', 'failed', 'no_space');

    const all = await failing();
    assert.deepEqual(all.items.map((d) => [d.name, d.failed, d.topErrorCode, d.presence]), [
      ['edge-broken', 3, 'host_error', 'online'],
      // One failure each: the latest failure first.
      ['edge-gone', 1, 'no_space', 'online'],
      ['edge-flaky', 1, 'not_found', 'online'],
    ]);
    const broken = all.items[0]!;
    assert.equal(broken.deviceId, devices['edge-broken']!.deviceId);
    assert.ok(broken.lastFailedAt >= before);
    assert.ok(Date.parse(all.to) - Date.parse(all.from) === 24 * 3600_000, 'the last 24 hours by default');

    assert.deepEqual((await failing('?limit=1')).items.map((d) => d.name), ['edge-broken']);
    assert.deepEqual((await failing(`?from=${encodeURIComponent(new Date().toISOString())}&limit=5`)).items, [], 'nothing failed since now');

    // A decommissioned device is left out.
    assert.equal((await admin.delete(`/api/v1/devices/${devices['edge-gone']!.deviceId}`)).status, 204);
    assert.deepEqual((await failing()).items.map((d) => d.name), ['edge-broken', 'edge-flaky']);
  });

  it('says what is wrong with a request, and who may ask', async () => {
    expectError(await admin.get(`/api/v1/fleet/failing-devices?from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`), 400, 'invalid_request', 'from');
    assert.equal((await admin.get('/api/v1/fleet/failing-devices?limit=0')).status, 400);
    assert.equal((await manager.api.get('/api/v1/fleet/failing-devices')).status, 401);
  });
});
