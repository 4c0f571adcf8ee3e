/**
 * GET /fleet/summary and the device list's sort, against a real manager process: devices
 * enrolled over REST with different hypervisors and agent versions, one of them online over
 * MQTT, and a queued task.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { FleetSummary } from '@pallas/protocol';
import { createEnrollmentToken, startManagerProcess, waitFor, type Api, type ManagerProcess } from '@pallas/testkit';
import { closeClient, connect, fakeFacts, type Enrolled } from './support.js';

describe('fleet summary', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let client: MqttClient | undefined;
  const devices: Enrolled[] = [];

  before(async () => {
    manager = await startManagerProcess();
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 10 });
    for (const [name, kind, agent] of [['b-esxi', 'esxi', '0.1.0'], ['a-sim', 'sim', '0.1.0'], ['c-sim', 'sim', '0.2.0']] as const) {
      const res = await manager.api.post('/api/v1/enroll', {
        token, deviceId: crypto.randomUUID(), facts: fakeFacts(name, { hypervisor: { kind, version: '1' }, agentVersion: agent }),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      devices.push({ deviceId: res.body.deviceId, hostname: name, response: res.body, creds: res.body.mqtt });
    }
  });
  after(async () => {
    await closeClient(client);
    await manager?.close();
  });

  it('counts devices by presence, hypervisor and agent version, and tasks by state', async () => {
    const online = devices[0]!;
    client = await connect(manager.mqttUrl, online.creds);
    await client.publishAsync(`pallas/v1/d/${online.deviceId}/presence`, JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    // A task for an offline device stays queued.
    const task = await admin.post(`/api/v1/devices/${devices[1]!.deviceId}/vms`, { name: 'vm-1', vcpus: 1, memoryMB: 256, diskGB: 1 });
    assert.equal(task.status, 202);

    const summary = await waitFor('one device online', async () => {
      const res = await admin.get<FleetSummary>('/api/v1/fleet/summary');
      assert.equal(res.status, 200);
      return res.body.devices.online === 1 && res.body;
    });
    assert.deepEqual(summary.devices, { total: 3, online: 1, unresponsive: 0, offline: 2 });
    // The same counts as Prometheus gauges, every presence present.
    const metrics = await fetch(`${manager.httpUrl}/metrics`).then((r) => r.text());
    for (const [presence, n] of [['online', 1], ['unresponsive', 0], ['offline', 2]]) {
      assert.match(metrics, new RegExp(`^pallas_devices\\{presence="${presence}"\\} ${n}$`, 'm'));
    }
    assert.deepEqual(summary.hypervisors, [{ value: 'sim', count: 2 }, { value: 'esxi', count: 1 }]);
    assert.deepEqual(summary.agentVersions, [{ value: '0.1.0', count: 2 }, { value: '0.2.0', count: 1 }]);
    assert.equal(summary.tasks.queued, 1);
    assert.deepEqual(summary.tasks.last24h, { succeeded: 0, failed: 0, cancelled: 0, timedOut: 0 });

    // Cancelling the queued task finishes it at once: it counts among the last 24 hours.
    assert.equal((await admin.post(`/api/v1/tasks/${task.body.id}/cancel`)).status, 202);
    const after = (await admin.get<FleetSummary>('/api/v1/fleet/summary')).body;
    assert.equal(after.tasks.queued, 0);
    assert.equal(after.tasks.last24h.cancelled, 1);
  });

  it('is for logged-in users only', async () => {
    assert.equal((await manager.api.get('/api/v1/fleet/summary')).status, 401);
  });

  it('sorts the device list by name, presence and last seen, either way', async () => {
    const names = async (sort: string) => (await admin.get(`/api/v1/devices?sort=${sort}`)).body.items.map((d: { name: string }) => d.name);
    assert.deepEqual(await names('name'), ['a-sim', 'b-esxi', 'c-sim']);
    assert.deepEqual(await names('-name'), ['c-sim', 'b-esxi', 'a-sim']);
    assert.equal((await names('-presence'))[0], 'b-esxi'); // online sorts after offline
    assert.equal((await names('-lastSeenAt'))[0], 'b-esxi');
    assert.equal((await admin.get('/api/v1/devices?sort=size')).status, 400);
  });
});
