/**
 * The `scale` scenario's fan-out alone, repeated: one manager (embedded broker, SQLite or
 * PostgreSQL), N light devices (bench/lib/light-fleet), R rounds of one `vm.create` to every
 * device, each timed from the request to each device receiving the ack of its stored result.
 * Per round it prints p50/p99, and the CPU the manager and its PostgreSQL backends spent per
 * task: on this shared 2-core machine latency moves with other people's work, CPU per task
 * much less, so that is the figure to compare a change by.
 *
 *   PALLAS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node --import tsx bench/standalone/scale-fanout.ts [devices] [rounds] [sqlite|postgres]
 *
 * PALLAS_BENCH_PROFILE=<dir> writes the manager's CPU profile there at its exit (summarize it
 * with bench/standalone/profile-summary.mjs). Enrolling and connecting come before the first
 * round and are in the profile too; the rounds are the busiest part of it.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDriver } from '@pallas/agent';
import { PALLAS_VERSION } from '@pallas/protocol';
import { PallasClient } from '@pallas/client';
import { createLimiter } from '@pallas/sim';
import { startManagerProcess, tempDir } from '@pallas/testkit';
import { LightFleet } from '../lib/light-fleet/light-fleet.js';
import type { DeviceCredential } from '../lib/light-fleet/light-device.js';
import { percentile } from '../lib/stats.js';
import { PolledCpu, cpuSecondsOf, postgresBackends, profileNodeArgs } from '../lib/proc.js';

const devices = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const store = (process.argv[4] ?? 'postgres') as 'sqlite' | 'postgres';

const driver = await createDriver('sim', { seed: 1, hostname: 'scale-sim' });
const facts = { ...(await driver.hostFacts()), agentVersion: PALLAS_VERSION, agentUptimeSec: 60 };
const body = JSON.stringify({ facts, vms: await driver.listVms() });
await driver.close();

const dir = tempDir('pallas-bench-fanout-');
const manager = await startManagerProcess({
  dataDir: join(dir.path, 'manager'),
  database: store,
  args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
  nodeArgs: ['--expose-gc', ...profileNodeArgs()],
});
let fleet: LightFleet | undefined;
try {
  const admin = await manager.client();
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: devices } });
  const device = new PallasClient({ server: manager.httpUrl });
  const gate = createLimiter(50);
  const creds: DeviceCredential[] = await Promise.all(Array.from({ length: devices }, (_, i) => gate(async () => {
    const r = await device.call('enroll', { body: { token, deviceId: randomUUID(), facts: { ...facts, hostname: `scale-${String(i + 1).padStart(5, '0')}` } } });
    return { deviceId: r.deviceId, clientId: r.mqtt.clientId, username: r.mqtt.username, password: r.mqtt.password };
  })));
  const mqtt = new URL(manager.mqttUrl);
  fleet = await LightFleet.start({ host: mqtt.hostname, port: Number(mqtt.port), keepaliveSec: 60, statusBody: body, maxDevices: devices });
  const added = await fleet.add(creds);
  if (added.online !== devices) throw new Error(`${added.online} of ${devices} online`);
  await sleep(3000);
  const ids = creds.map((c) => c.deviceId);
  for (let round = 1; round <= rounds; round++) {
    await fleet.taskAcks();
    const pg = store === 'postgres' ? new PolledCpu(() => new Map([['postgresql', postgresBackends(manager.databaseUrl)]])) : undefined;
    const m0 = cpuSecondsOf([manager.pid]);
    const load0 = loadavg()[0]!;
    const t0 = Date.now();
    await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name: `fan-${round}-${t0}`, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
    const posted = Date.now() - t0;
    const ackAt: number[] = [];
    for (let i = 0; i < 240 && ackAt.length < ids.length; i++) {
      await sleep(250);
      ackAt.push(...(await fleet.taskAcks()).ackAt);
    }
    const ms = ackAt.map((t) => t - t0);
    const managerUs = ((cpuSecondsOf([manager.pid]) - m0) * 1e6) / devices;
    const dbUs = ((pg?.stop().get('postgresql') ?? 0) * 1e6) / devices;
    console.log(`round ${round}: ${ackAt.length}/${devices} acked, POST ${posted} ms, p50 ${percentile(ms, 50).toFixed(0)} ms, p99 ${percentile(ms, 99).toFixed(0)} ms; `
      + `CPU per task: manager ${managerUs.toFixed(0)} µs${store === 'postgres' ? `, PostgreSQL ${dbUs.toFixed(0)} µs` : ''}; load ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`);
    await sleep(2000);
  }
} finally {
  await fleet?.close().catch(() => {});
  // A minute to write its profile: on a loaded machine that takes longer than close()'s 5 s.
  await manager.stop(60_000).catch(() => {});
  await manager.close().catch(() => {});
  dir.cleanup();
}
process.exit();
