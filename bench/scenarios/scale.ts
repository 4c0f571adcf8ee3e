/**
 * Scenario "scale" (issue #20): one manager (its own process, embedded broker, SQLite or
 * with `--store postgres` PostgreSQL) under a light simulated fleet (bench/lib/light-fleet)
 * grown through fleet sizes up to `--devices`, beside Debian's Mosquitto started by the
 * benchmark under the same fleet.
 *
 * At each size: the time to connect the step's new devices, the manager's RSS after a forced
 * GC, and p99 of the device list and search API while the fleet reports; at 10,000 devices
 * and more (or at the largest size), a fan-out. At the largest size: a reconnect storm and a
 * status rate raised until the manager falls behind. Mosquitto then takes the same fleet,
 * storm and ramp. Every figure that cannot be a result fails its sanity check (stats.ts).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDriver } from '@pallas/agent';
import { PALLAS_VERSION, type DeviceQuery } from '@pallas/protocol';
import { PallasClient } from '@pallas/client';
import { createLimiter } from '@pallas/sim';
import { startManagerProcess, tempDir } from '@pallas/testkit';
import { LightFleet, type ConnectResult } from '../lib/light-fleet/light-fleet.js';
import type { DeviceCredential } from '../lib/light-fleet/light-device.js';
import { GC_NODE_ARGS, memorySlope, settledRss, type MemoryPoint } from '../lib/memory.js';
import { startBenchMosquitto } from '../lib/mosquitto-process.js';
import { metricValue, profileNodeArgs, rssBytes } from '../lib/proc.js';
import { failedRow, percentile, type Row } from '../lib/stats.js';
import { rampStatus, type RampResult } from '../lib/status-ramp.js';

export interface ScaleOptions {
  devices: number;
  /** Fleet sizes to measure at; those above `devices` are left out and `devices` is added. */
  sizes: number[];
  /** Seconds per step of the status ramp. */
  rampSeconds: number;
  /** The manager's store: its SQLite file, or a fresh PostgreSQL database (PALLAS_TEST_PG_URL). */
  store: 'sqlite' | 'postgres';
}

const KEEPALIVE_SEC = 60;

/** The storms measured: a name, and the window each device's first attempt is spread over. */
const STORMS: ReadonlyArray<readonly [string, number]> = [['at once', 0], ["agents' jitter, 1 s", 1000]];

type StormResult = ReturnType<typeof connectSummary> & { onlineMs: number[]; managerConnected: number; onlineStored: number; storedCatchUpMs: number };

/** Status body of the sim driver (host facts and VMs, ~2 KB), without seq and sentAt. */
async function statusBody() {
  const driver = await createDriver('sim', { seed: 1, hostname: 'scale-sim' });
  const facts = { ...(await driver.hostFacts()), agentVersion: PALLAS_VERSION, agentUptimeSec: 60 };
  const body = JSON.stringify({ facts, vms: await driver.listVms() });
  await driver.close();
  return { body, facts };
}

/** p99 of sequential `listDevices` calls with `queries` (round-robin) for `ms`, while something else runs. */
async function apiLatency(admin: PallasClient, queries: DeviceQuery[], ms: number): Promise<{ p50: number; p99: number; n: number }> {
  const samples: number[] = [];
  const end = performance.now() + ms;
  for (let i = 0; performance.now() < end; i++) {
    const t0 = performance.now();
    await admin.call('listDevices', { query: queries[i % queries.length]! });
    samples.push(performance.now() - t0);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

const connectSummary = (r: ConnectResult, n: number) => ({
  seconds: Math.max(...r.onlineMs, 0) / 1000, p50: percentile(r.onlineMs, 50), p99: percentile(r.onlineMs, 99), online: r.online, expected: n, retries: r.retries, lost: r.lost.slice(0, 5),
});

export async function runScale(o: ScaleOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const sizes = [...new Set([...o.sizes.filter((s) => s < o.devices), o.devices])].sort((a, b) => a - b);
  const dir = tempDir('pallas-bench-scale-');
  const raw: Record<string, unknown> = { sizes, store: o.store, nodeVersion: process.version };
  const rows: Row[] = [];
  const { body, facts } = await statusBody();
  const manager = await startManagerProcess({
    dataDir: join(dir.path, 'manager'),
    database: o.store,
    args: ['--status-interval-sec', '86400', '--keepalive-sec', String(KEEPALIVE_SEC)],
    nodeArgs: [...GC_NODE_ARGS, ...profileNodeArgs()],
  });
  let fleet: LightFleet | undefined;
  // A fleet that cannot connect says whether the manager is still there, and what it last logged.
  const managerGone = () => (manager.child.exitCode !== null || manager.child.signalCode !== null
    ? ` (the manager exited: ${manager.child.exitCode ?? manager.child.signalCode}; its last output: ${manager.output().slice(-2000)})`
    : ` (the manager is running; its last output: ${manager.output().slice(-2000) || 'none'})`);
  try {
    const admin = await manager.client();
    const scrape = async () => (await fetch(`${manager.httpUrl}/metrics`)).text();

    // --- Credentials from the enrollment API, as devices get them ---------------------------
    const { token: enrollToken } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    const device = new PallasClient({ server: manager.httpUrl });
    const gate = createLimiter(50);
    let t0 = performance.now();
    const creds: DeviceCredential[] = await Promise.all(Array.from({ length: o.devices }, (_, i) => gate(async () => {
      const hostname = `scale-${String(i + 1).padStart(5, '0')}`;
      const r = await device.call('enroll', { body: { token: enrollToken, deviceId: randomUUID(), facts: { ...facts, hostname } } });
      return { deviceId: r.deviceId, clientId: r.mqtt.clientId, username: r.mqtt.username, password: r.mqtt.password };
    })));
    raw.enrollPerSecond = o.devices / ((performance.now() - t0) / 1000);

    // --- Grow the fleet through the sizes -------------------------------------------------
    const mqtt = new URL(manager.mqttUrl);
    fleet = await LightFleet.start({ host: mqtt.hostname, port: Number(mqtt.port), keepaliveSec: KEEPALIVE_SEC, statusBody: body, maxDevices: o.devices });
    raw.simulator = { processes: fleet.processes, sourceAddresses: fleet.sourceAddresses };
    const listQueries: DeviceQuery[] = [{ limit: 50, sort: 'name' }, { limit: 50, sort: 'name', presence: 'online' }];
    const searchQueries: DeviceQuery[] = ['00042', '1234', 'scale-0', '999'].map((name) => ({ limit: 50, sort: 'name', name }));
    // Baseline for the API: the same requests with the fleet quiet, before it connects.
    const quietList = await apiLatency(admin, listQueries, 3000);
    const quietSearch = await apiLatency(admin, searchQueries, 3000);
    const memory: MemoryPoint[] = [];
    const steps: Record<string, unknown>[] = [];
    const fanOuts: Record<string, unknown>[] = [];
    const connectMs: number[] = [];
    let connected = 0;
    for (const size of sizes) {
      const added = await fleet.add(creds.slice(connected, size));
      connectMs.push(...added.onlineMs);
      const step = { size, connect: connectSummary(added, size - connected) };
      connected = size;
      if (added.online !== size) throw new Error(`${added.online} of ${size} devices online: ${added.lost.slice(0, 3).join('; ')}${managerGone()}`);
      memory.push({ devices: size, rssBytes: await settledRss(manager.pid) });
      // The list and search while the fleet reports (a steady 1,000 status/s).
      const reporting = fleet.status(1000, 8);
      await sleep(1000);
      const list = await apiLatency(admin, listQueries, 3000);
      const search = await apiLatency(admin, searchQueries, 3000);
      await reporting;
      // Settled like the manager's, so its slope is the simulator's per-device cost.
      await sleep(500);
      steps.push({ ...step, rssBytes: memory.at(-1)!.rssBytes, list, search, simulatorRssBytes: await fleet.rssBytes() });
      console.log(`  scale: ${size} devices, list/search measured; fan-out next if due`);
      if (size >= 10_000 || size === o.devices) {
        fanOuts.push({ size, ...(await fanOut(admin, creds.slice(0, size), fleet)) });
        if (manager.child.exitCode !== null || manager.child.signalCode !== null) throw new Error(`fan-out to ${size}: ${managerGone()}`);
      }
      console.log(`  scale: ${size} devices connected, manager RSS ${(memory.at(-1)!.rssBytes / 2 ** 20).toFixed(0)} MB, list p99 ${list.p99.toFixed(0)} ms`);
    }
    raw.steps = steps;
    raw.fanOuts = fanOuts;

    // --- Reconnect storms: every device drops and returns ----------------------------------
    // At once (the harshest case), then as agents return after a manager restart: each one's
    // first attempt after a full-jitter delay within the backoff's base (packages/agent's
    // Backoff, 1 s).
    const storms: Record<string, StormResult> = {};
    for (const [name, spreadMs] of STORMS) {
      console.log(`  scale: reconnect storm (${name})`);
      await fleet.drop();
      await waitMetric(scrape, 'pallas_devices_connected', (v) => v === 0, 60_000);
      const storm = await fleet.reconnect({ spreadMs });
      // None lost: the manager's own count of open sessions and its stored presence agree.
      const connectedAfter = await waitMetric(scrape, 'pallas_devices_connected', (v) => v >= o.devices, 30_000);
      // Stored presence is written in batches: it is given 10 s to catch up, and the time it took is kept.
      const storedOnline = async () => (await admin.call('listDevices', { query: { presence: 'online', limit: 1 } })).total;
      const s0 = performance.now();
      let onlineStored = await storedOnline();
      while (onlineStored < o.devices && performance.now() - s0 < 10_000) {
        await sleep(250);
        onlineStored = await storedOnline();
      }
      storms[name] = { ...connectSummary(storm, o.devices), onlineMs: storm.onlineMs, managerConnected: connectedAfter, onlineStored, storedCatchUpMs: performance.now() - s0 };
    }
    raw.storms = Object.fromEntries(Object.entries(storms).map(([k, { onlineMs: _, ...v }]) => [k, v]));

    console.log('  scale: status ramp');
    // --- Status: raise the offered rate until the manager falls behind ----------------------
    const persisted = async () => metricValue(await scrape(), 'pallas_status_messages_persisted_total');
    const rejected0 = metricValue(await scrape(), 'pallas_mqtt_rejected_total');
    const managerRamp = await rampStatus((rate) => fleet!.status(rate, o.rampSeconds), persisted, o.rampSeconds);
    const rejected = metricValue(await scrape(), 'pallas_mqtt_rejected_total') - rejected0;
    raw.managerRamp = { ...managerRamp, rejected };
    await fleet.close();
    fleet = undefined;
    const managerSlope = memorySlope(memory);
    raw.memory = { points: memory, perDeviceBytes: managerSlope.perDevice, spreadBytes: managerSlope.spread, stepSlopesBytes: managerSlope.steps, failed: managerSlope.failed };

    // --- Mosquitto under the same fleet -------------------------------------------------
    console.log('  scale: the same against Mosquitto');
    const mosq = await startBenchMosquitto();
    let mosqResult: Awaited<ReturnType<typeof underMosquitto>>;
    try {
      mosqResult = await underMosquitto(mosq, creds, sizes, body, o.rampSeconds);
    } finally {
      await mosq.stop();
    }
    raw.mosquitto = mosqResult;

    // --- Rows ----------------------------------------------------------------------------
    const mosqSlope = memorySlope(mosqResult.memory);
    const simSlope = memorySlope((steps as Array<{ size: number; simulatorRssBytes: number }>).map((s) => ({ devices: s.size, rssBytes: s.simulatorRssBytes })));
    rows.push(failedRow({ metric: 'light simulator RSS per device (slope)', value: simSlope.perDevice / 1024, spread: simSlope.spread / 1024, unit: 'KB', target: 'a few KB' }, simSlope.failed));
    rows.push(failedRow({
      metric: `manager RSS per device (slope over ${sizes.join('/')}, GC forced)`, value: managerSlope.perDevice / 1024, spread: managerSlope.spread / 1024, unit: 'KB', target: '≤ 20 KB',
      ...(mosqSlope.failed ? {} : { baseline: { name: 'Mosquitto per client', value: mosqSlope.perDevice / 1024 } }),
    }, managerSlope.failed));
    for (const s of steps as Array<{ size: number; connect: ReturnType<typeof connectSummary> }>) {
      const m = mosqResult.steps.find((x) => x.size === s.size)!;
      rows.push({ metric: `connect ${s.connect.expected} new devices (to ${s.size})`, value: s.connect.seconds, unit: 's', baseline: { name: 'Mosquitto', value: m.connect.seconds } });
    }
    for (const [name] of STORMS) {
      const storm = storms[name]!;
      const mosqStorm = mosqResult.storms[name]!;
      rows.push(
        failedRow({ metric: `reconnect storm (${name}): all ${o.devices} back`, value: storm.onlineMs.length ? Math.max(...storm.onlineMs) / 1000 : Number.NaN, unit: 's', target: '≤ 15 s', baseline: { name: 'Mosquitto', value: mosqStorm.seconds } },
          storm.online < o.devices || storm.managerConnected < o.devices || storm.onlineStored < o.devices ? `lost devices: ${storm.online} came online, manager counts ${storm.managerConnected} sessions, ${storm.onlineStored} stored online, of ${o.devices}` : undefined),
        { metric: `reconnect storm (${name}) p50`, value: percentile(storm.onlineMs, 50), unit: 'ms', target: '≤ 2× Mosquitto', baseline: { name: 'Mosquitto', value: mosqStorm.p50 } },
        { metric: `reconnect storm (${name}) p99`, value: percentile(storm.onlineMs, 99), unit: 'ms', baseline: { name: 'Mosquitto', value: mosqStorm.p99 } },
      );
    }
    rows.push(
      // A ramp ended by the load generator gives a lower bound ("≥"); against a baseline that is
      // a lower bound, the ratio is an upper bound.
      failedRow({ metric: `status/s persisted, highest kept up (${o.devices} devices)${managerRamp.lowerBound ? ' ≥' : ''}`, value: managerRamp.highestKeptUp, unit: '/s', target: '≥ 0.8× Mosquitto',
        ...(mosqResult.ramp.failed ? {} : { baseline: { name: `Mosquitto delivered${mosqResult.ramp.lowerBound ? ' ≥ (sender-bound)' : ''}`, value: mosqResult.ramp.highestKeptUp } }) },
        managerRamp.failed ?? (rejected > 0 ? `${rejected} messages rejected by the manager (rate limit?): the rate is not what was offered` : undefined)),
    );
    for (const s of steps as Array<{ size: number; list: { p99: number }; search: { p99: number } }>) {
      rows.push(
        { metric: `device list p99 at ${s.size}, fleet reporting`, value: s.list.p99, unit: 'ms', target: s.size >= 15_000 ? '≤ 100 ms' : '', baseline: { name: 'same, quiet, empty', value: quietList.p99 } },
        { metric: `device search p99 at ${s.size}, fleet reporting`, value: s.search.p99, unit: 'ms', target: s.size >= 15_000 ? '≤ 100 ms' : '', baseline: { name: 'same, quiet, empty', value: quietSearch.p99 } },
      );
    }
    for (const f of fanOuts as Array<{ size: number; p50: number; p99: number; failed?: string }>) {
      rows.push(
        failedRow({ metric: `fan-out to ${f.size}: POST → result stored, p50`, value: f.p50, unit: 'ms' }, f.failed),
        failedRow({ metric: `fan-out to ${f.size}: p99`, value: f.p99, unit: 'ms', target: f.size >= 10_000 ? '≤ 3000 ms' : '' }, f.failed),
      );
    }
    raw.quiet = { list: quietList, search: quietSearch };
  } finally {
    await fleet?.close().catch(() => {});
    await manager.close().catch(() => {});
    dir.cleanup();
  }
  return { rows, raw };
}

/**
 * One task to every device at once (`createBulkTask`, 10,000 ids per request, the API's
 * limit), timed from the first request to each device receiving the `cmd/task-ack` of its
 * result: the manager has stored it. The light device answers at once, so this is the
 * manager's and the broker's part of a fan-out.
 */
async function fanOut(admin: PallasClient, creds: DeviceCredential[], fleet: LightFleet): Promise<{ p50: number; p99: number; acked: number; failed?: string }> {
  await fleet.taskAcks(); // forget earlier ones
  const t0 = Date.now();
  const ids = creds.map((c) => c.deviceId);
  const chunks = Array.from({ length: Math.ceil(ids.length / 10_000) }, (_, i) => ids.slice(i * 10_000, (i + 1) * 10_000));
  await Promise.all(chunks.map((deviceIds) => admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name: `scale-${t0}`, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds } })));
  const ackAt: number[] = [];
  for (let i = 0; i < 120 && ackAt.length < ids.length; i++) {
    await sleep(500);
    ackAt.push(...(await fleet.taskAcks()).ackAt);
  }
  const ms = ackAt.map((t) => t - t0);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), acked: ackAt.length, ...(ackAt.length < ids.length ? { failed: `${ackAt.length} of ${ids.length} results acknowledged within 60 s` } : {}) };
}

async function waitMetric(scrape: () => Promise<string>, name: string, ok: (v: number) => boolean, timeoutMs: number): Promise<number> {
  const end = performance.now() + timeoutMs;
  let v = Number.NaN;
  while (performance.now() < end) {
    v = metricValue(await scrape(), name);
    if (ok(v)) return v;
    await sleep(200);
  }
  return v;
}

/** The same fleet, sizes, storm and ramp against the benchmark's own Mosquitto. */
async function underMosquitto(mosq: { host: string; port: number; pid: number }, creds: DeviceCredential[], sizes: number[], body: string, rampSeconds: number) {
  const { connectAsync } = await import('mqtt');
  // One subscriber counts what Mosquitto delivers, as the manager is one subscriber of its broker.
  const sub = await connectAsync(`mqtt://${mosq.host}:${mosq.port}`, { clientId: 'bench-counter', clean: true, reconnectPeriod: 0 });
  let delivered = 0;
  sub.on('message', () => void delivered++);
  await sub.subscribeAsync('pallas/v1/d/+/status', { qos: 1 });
  const fleet = await LightFleet.start({ host: mosq.host, port: mosq.port, keepaliveSec: KEEPALIVE_SEC, statusBody: body, maxDevices: creds.length });
  try {
    // Anonymous: Mosquitto here checks no credentials (the manager does: its figures include that).
    const anon = creds.map((c) => ({ deviceId: c.deviceId, clientId: c.clientId }));
    const memory: MemoryPoint[] = [];
    const steps: Array<{ size: number; connect: ReturnType<typeof connectSummary> }> = [];
    let connected = 0;
    for (const size of sizes) {
      const r = await fleet.add(anon.slice(connected, size));
      steps.push({ size, connect: connectSummary(r, size - connected) });
      connected = size;
      await sleep(1000);
      memory.push({ devices: size, rssBytes: rssBytes(mosq.pid) });
    }
    const storms: Record<string, ReturnType<typeof connectSummary>> = {};
    for (const [name, spreadMs] of STORMS) {
      await fleet.drop();
      await sleep(2000);
      storms[name] = connectSummary(await fleet.reconnect({ spreadMs }), creds.length);
    }
    const ramp = await rampStatus((rate) => fleet.status(rate, rampSeconds), async () => delivered, rampSeconds);
    return { memory, steps, storms, ramp };
  } finally {
    await fleet.close();
    await sub.endAsync(true);
  }
}
