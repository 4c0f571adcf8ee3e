/**
 * The history routes against a real manager process (SQLite, or PostgreSQL on the runner's
 * PostgreSQL pass): a device connects over MQTT and reports, drops its connection (its last
 * will), and the REST API gives back its presence intervals and, after a graceful restart
 * (which writes the buckets still open in memory), its resource points; the fleet series
 * has the presence sample the fleet job took at start. Bucket arithmetic and pruning are in
 * history.test.ts, with a test clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import type { DeviceHistory, FleetHistory } from '@pallas/protocol';
import { createEnrollmentToken, managerDatabase, startManagerProcess, tempDir, waitFor, type Api, type ManagerDatabase, type ManagerProcess } from '@pallas/testkit';
import { closeClient, connect, enroll, expectError, fakeFacts, statusMessage, type Enrolled } from './support.js';

describe('history API', () => {
  const dir = tempDir('pallas-history-api-');
  let database: ManagerDatabase;
  let manager: ManagerProcess;
  let admin: Api;
  let device: Enrolled;
  let client: MqttClient | undefined;
  const start = async () => {
    manager = await startManagerProcess({ dataDir: dir.path, database: { url: database.url } });
    admin = await manager.admin();
  };

  before(async () => {
    database = await managerDatabase(undefined, dir.path);
    await start();
    device = await enroll(manager.api, await createEnrollmentToken(admin, { maxUses: 1 }), 'edge-history');
  });
  after(async () => {
    await closeClient(client);
    await manager?.close();
    await database?.dispose();
    dir.cleanup();
  });

  const history = async (query = '') => {
    const res = await admin.get<DeviceHistory>(`/api/v1/devices/${device.deviceId}/history${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it('records a device\'s presence as it comes online and as its connection drops', async () => {
    client = await connect(manager.mqttUrl, device.creds, {
      will: { topic: `pallas/v1/d/${device.deviceId}/presence`, payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'connection lost' })), qos: 1, retain: false },
    });
    await client.publishAsync(`pallas/v1/d/${device.deviceId}/presence`, JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    // Reports further apart than the status buffer's flush (250 ms): one in the same flush
    // would be coalesced with the next, and history samples what the buffer writes.
    for (const [seq, cpu] of [[1, 10], [2, 20], [3, 30]] as const) {
      await sleep(400);
      await client.publishAsync(`pallas/v1/d/${device.deviceId}/status`, JSON.stringify(statusMessage(seq, fakeFacts('edge-history', { cpu: { model: 'x', cores: 4, usagePct: cpu } }))), { qos: 1 });
    }
    await waitFor('the online transition', async () => (await history()).presence.some((i) => i.state === 'online'));
    client.stream.destroy(); // no DISCONNECT: the broker publishes the will
    client = undefined;
    const h = await waitFor('the offline transition', async () => {
      const b = await history();
      return b.presence.at(-1)?.state === 'offline' && b;
    });
    // Before the device's first report nothing is said; then online, then offline (lasting).
    assert.deepEqual(h.presence.map((i) => i.state).slice(-2), ['online', 'offline']);
    assert.equal(h.presence.at(-1)!.to, null);
    assert.equal(h.presenceSummary.find((s) => s.state === 'offline')!.times, 1);
  });

  it('serves the resource points once written (a graceful stop writes open buckets)', async () => {
    await manager.stop();
    await start();
    const h = await history();
    assert.equal(h.step, 60);
    const samples = h.points.reduce((n, p) => n + p.samples, 0);
    assert.equal(samples, 3, JSON.stringify(h.points));
    assert.equal(Math.min(...h.points.map((p) => p.cpuPct!.min)), 10);
    assert.equal(Math.max(...h.points.map((p) => p.cpuPct!.max)), 30);
    assert.equal(h.points[0]!.memoryTotalMB, 8192);
    const coarse = await history('?step=900');
    assert.equal(coarse.step, 900);
    assert.equal(coarse.points.reduce((n, p) => n + p.samples, 0), 3);
  });

  it('serves the fleet series the fleet job sampled', async () => {
    const res = await admin.get<FleetHistory>('/api/v1/fleet/history?metric=presence');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const offline = res.body.series.find((s) => s.metric === 'presence' && s.label === 'offline');
    assert.ok(offline && offline.points.length > 0, JSON.stringify(res.body));
    assert.equal(offline.points.at(-1)!.max, 1);
    assert.ok(res.body.series.every((s) => s.metric === 'presence'));
    // The same count on /metrics, read from the store at the scrape.
    const metrics = await (await fetch(`${manager.httpUrl}/metrics`)).text();
    assert.match(metrics, /^pallas_devices\{presence="offline"\} 1$/m);
  });

  it('says what is wrong with a request, and who may ask', async () => {
    expectError(await admin.get('/api/v1/devices/no-such-device/history'), 404, 'not_found');
    expectError(await admin.get(`/api/v1/devices/${device.deviceId}/history?step=90`), 400, 'invalid_request');
    expectError(await admin.get(`/api/v1/devices/${device.deviceId}/history?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`), 400, 'invalid_request', 'before');
    expectError(await admin.get('/api/v1/fleet/history?metric=cpu'), 400, 'invalid_request');
    assert.equal((await manager.api.get('/api/v1/fleet/history')).status, 401);
  });
});
