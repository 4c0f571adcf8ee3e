/**
 * Scenario "history" (issue #19, docs/history.md): what keeping history costs and how fast it
 * serves.
 *
 * 1. Write cost, through the real status ingest: a manager process (SQLite, embedded broker)
 *    with N light devices reporting once every `reportEverySec`, in rounds of `roundSeconds`
 *    (each round holds a minute's close, when the 1-minute buckets of every device are
 *    written). The manager's CPU time per persisted status message with history on is set
 *    beside the same with history off (`PALLAS_KEEP_HISTORY=false`) in the same run: two
 *    managers side by side, taking their rounds in turn.
 * 2. Store size and serving, on SQLite and (with PALLAS_TEST_PG_URL) PostgreSQL: `days` of
 *    history for N devices is synthesized straight into the tables at the kept resolutions
 *    (1-minute buckets for the last 25 h, 15-minute buckets for the whole range, four
 *    presence changes a device a day, the fleet series), its bytes measured per table, and
 *    a manager process on that store serves the overview's series and a device page's.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDriver } from '@pallas/agent';
import { PALLAS_VERSION } from '@pallas/protocol';
import { PallasClient } from '@pallas/client';
import { createLimiter } from '@pallas/sim';
import { TEST_PG_URL, createTestDatabase, startManagerProcess, tempDir } from '@pallas/testkit';
import { openStore } from '../../packages/manager/src/store/store.js';
import { FLEET_LABELS, PRESENCE_CHANGES_PER_DAY, analyze, synthesizeHistory, tableSizes, type TableSize } from '../../packages/manager/test/history-synthesis.js';
import { LightFleet } from '../lib/light-fleet/light-fleet.js';
import type { DeviceCredential } from '../lib/light-fleet/light-device.js';
import { cpuSeconds, metricValue } from '../lib/proc.js';
import { failedRow, percentile, type Row } from '../lib/stats.js';

export interface HistoryOptions {
  devices: number;
  /** Days of synthesized history. Default 7. */
  days: number;
  /** Ingest rounds per mode (history off, on). */
  rounds: number;
  /** Seconds per ingest round; at least 60 so each holds a minute's close. */
  roundSeconds: number;
  /** How often each device reports during the ingest rounds. */
  reportEverySec: number;
}


/** The manager's CPU time so far (user + system), ms. */
const cpuMs = (pid: number) => cpuSeconds(pid) * 1000;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stdev = (xs: number[]) => (xs.length < 2 ? Number.NaN : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

async function statusBody() {
  const driver = await createDriver('sim', { seed: 1, hostname: 'history-sim' });
  const facts = { ...(await driver.hostFacts()), agentVersion: PALLAS_VERSION, agentUptimeSec: 60 };
  const body = JSON.stringify({ facts, vms: await driver.listVms() });
  await driver.close();
  return { body, facts };
}

interface IngestResult { cpuUsPerMessage: number[]; messages: number[]; historyRows: number[] }

interface Ingest {
  /** One round of reports; its CPU µs per persisted message is added to `result`. */
  round(): Promise<void>;
  result: IngestResult;
  close(): Promise<void>;
}

/**
 * Part 1, one mode: a fresh manager with N devices online, warmed up. The two modes' managers
 * run side by side and take their rounds in turn (see runHistory), so a change in the
 * machine's load falls on both alike.
 */
async function startIngest(o: HistoryOptions, keepHistory: boolean): Promise<Ingest> {
  const dir = tempDir('pallas-bench-history-');
  const manager = await startManagerProcess({
    dataDir: join(dir.path, 'manager'), database: 'sqlite',
    args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
    env: { PALLAS_KEEP_HISTORY: String(keepHistory) },
  });
  let fleet: LightFleet | undefined;
  const close = async () => {
    await fleet?.close();
    await manager.close().catch(() => {});
    dir.cleanup();
  };
  try {
    const admin = await manager.client();
    const scrape = async () => (await fetch(`${manager.httpUrl}/metrics`)).text();
    const persisted = async () => metricValue(await scrape(), 'pallas_status_messages_persisted_total');
    const { body, facts } = await statusBody();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    const device = new PallasClient({ server: manager.httpUrl });
    const gate = createLimiter(50);
    const creds: DeviceCredential[] = await Promise.all(Array.from({ length: o.devices }, (_, i) => gate(async () => {
      const r = await device.call('enroll', { body: { token, deviceId: randomUUID(), facts: { ...facts, hostname: `history-${i + 1}` } } });
      return { deviceId: r.deviceId, clientId: r.mqtt.clientId, username: r.mqtt.username, password: r.mqtt.password };
    })));
    const mqtt = new URL(manager.mqttUrl);
    fleet = await LightFleet.start({ host: mqtt.hostname, port: Number(mqtt.port), keepaliveSec: 60, statusBody: body, maxDevices: o.devices });
    const added = await fleet.add(creds);
    if (added.online !== o.devices) throw new Error(`${added.online} of ${o.devices} devices online: ${added.lost.slice(0, 3).join('; ')}`);
    const rate = o.devices / o.reportEverySec;
    await fleet.status(rate, 5); // warm-up: code paths compiled, first reports written
    await sleep(1000);
    const result: IngestResult = { cpuUsPerMessage: [], messages: [], historyRows: [] };
    const reporting = fleet;
    const round = async () => {
      const p0 = await persisted();
      const h0 = metricValue(await scrape(), 'pallas_history_rows_written_total');
      const c0 = cpuMs(manager.pid);
      const sent = await reporting.status(rate, o.roundSeconds);
      let p1 = await persisted();
      for (let i = 0; i < 50 && p1 - p0 < sent.acked; i++) {
        await sleep(200);
        p1 = await persisted();
      }
      const c1 = cpuMs(manager.pid);
      const messages = p1 - p0;
      result.messages.push(messages);
      result.cpuUsPerMessage.push(((c1 - c0) * 1000) / messages);
      result.historyRows.push(metricValue(await scrape(), 'pallas_history_rows_written_total') - h0);
      console.log(`  history: ingest with history ${keepHistory ? 'on' : 'off'}, round ${result.messages.length}: ${messages} messages, ${(((c1 - c0) * 1000) / messages).toFixed(0)} µs CPU each`);
    };
    return { round, result, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Wall time of `rounds` calls of `load`, one after another. */
async function timed(rounds: number, load: (i: number) => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await load(i);
    ms.push(performance.now() - t0);
  }
  return ms;
}

async function storeAndServe(kind: 'sqlite' | 'postgres', o: HistoryOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = tempDir('pallas-bench-history-store-');
  const pg = kind === 'postgres' ? await createTestDatabase(TEST_PG_URL!, 'pallas_bench') : undefined;
  const url = pg?.url ?? `sqlite:${join(dir.path, 'history.db')}`;
  try {
    const nowMs = Date.now();
    const store = await openStore(url);
    let synthesized: Awaited<ReturnType<typeof synthesizeHistory>>;
    let sizes: Record<string, TableSize>;
    try {
      await store.migrate();
      console.log(`  history: synthesizing ${o.days} days for ${o.devices} devices on ${kind}`);
      synthesized = await synthesizeHistory(store, { devices: o.devices, days: o.days, nowMs });
      await analyze(store);
      sizes = await tableSizes(store);
    } finally {
      await store.close();
    }
    const dh = sizes.device_history!;
    const bytesPerRow = dh.bytes / dh.rows;
    const transitionBytes = sizes.device_presence_history!.bytes / sizes.device_presence_history!.rows;
    // Per 1,000 devices: a day writes 1,440 one-minute and 96 quarter-hour rows a device, plus
    // its presence changes; kept are 25 h of the first and 31 days of the second.
    const rowsPerDay = 1000 * (1440 + 96 + PRESENCE_CHANGES_PER_DAY);
    const bytesPerDay = 1000 * ((1440 + 96) * bytesPerRow + PRESENCE_CHANGES_PER_DAY * transitionBytes);
    const keptBytes = 1000 * ((25 * 60 + 31 * 96) * bytesPerRow + 31 * PRESENCE_CHANGES_PER_DAY * transitionBytes);
    const fleetBytesPerDay = (sizes.fleet_history!.bytes / sizes.fleet_history!.rows) * FLEET_LABELS.length * (1440 + 96);

    console.log(`  history: serving from a manager on ${kind}`);
    const manager = await startManagerProcess({ dataDir: join(dir.path, 'manager'), database: { url } });
    let overviewMs: number[];
    let overviewWeekMs: number[];
    let summaryMs: number[];
    let deviceMs: number[];
    try {
      const admin = await manager.client();
      const iso = (ms: number) => new Date(ms).toISOString();
      const now = Date.now();
      const rounds = 100;
      // The overview's series as the console asks for them (packages/console/src/lib/series.ts
      // RANGES), at once: its default 24 h range (presence per 5 min; tasks and enrollments per
      // 10 min) with the failing-devices list, and its 7-day range (per hour; per 6 hours).
      const overview = () => Promise.all([
        admin.call('fleetHistory', { query: { metric: 'presence', from: iso(now - 86400_000), to: iso(now), step: 300 } }),
        admin.call('fleetHistory', { query: { metric: 'tasks,enrollments', from: iso(now - 86400_000), to: iso(now), step: 600 } }),
        admin.call('fleetFailingDevices', { query: { limit: 5 } }),
      ]);
      const overviewWeek = () => Promise.all([
        admin.call('fleetHistory', { query: { metric: 'presence', from: iso(now - o.days * 86400_000), to: iso(now), step: 3600 } }),
        admin.call('fleetHistory', { query: { metric: 'tasks,enrollments', from: iso(now - o.days * 86400_000), to: iso(now), step: 6 * 3600 } }),
      ]);
      const check = await overviewWeek();
      if (check[0].series.find((s) => s.label === 'online')!.points.length < o.days * 24 - 1) throw new Error(`the 7-day series came back short: ${JSON.stringify(check[0]).slice(0, 300)}`);
      await timed(10, overview); // warm-up
      summaryMs = await timed(rounds, () => admin.call('fleetSummary', {}));
      overviewMs = await timed(rounds, overview);
      overviewWeekMs = await timed(rounds, overviewWeek);
      deviceMs = await timed(rounds, (i) => {
        const id = synthesized.ids[(i * 7919) % synthesized.ids.length]!;
        return Promise.all([
          admin.call('getDeviceHistory', { params: { id }, query: { from: iso(now - 86400_000), to: iso(now), step: 60 } }),
          admin.call('getDeviceHistory', { params: { id }, query: { from: iso(now - o.days * 86400_000), to: iso(now), step: 900 } }),
        ]);
      });
    } finally {
      await manager.close().catch(() => {});
    }
    const totalBytes = Object.values(sizes).reduce((s, t) => s + t.bytes, 0);
    const notPositive = (v: number) => (v > 0 ? undefined : `${v}: not a size`);
    const rows: Row[] = [
      failedRow({ metric: `${kind}: history store, ${o.devices} devices × ${o.days} d`, value: totalBytes / 2 ** 20, unit: 'MiB' }, notPositive(totalBytes)),
      failedRow({ metric: `${kind}: bytes per device bucket row (with its key)`, value: bytesPerRow, unit: 'B' }, notPositive(bytesPerRow)),
      { metric: `${kind}: rows written per 1,000 devices per day`, value: rowsPerDay / 1e6, unit: 'M rows' },
      failedRow({ metric: `${kind}: bytes written per 1,000 devices per day`, value: bytesPerDay / 2 ** 20, unit: 'MiB' }, notPositive(bytesPerDay)),
      failedRow({ metric: `${kind}: kept per 1,000 devices (25 h fine + 31 d coarse)`, value: keptBytes / 2 ** 20, unit: 'MiB' }, notPositive(keptBytes)),
      failedRow({ metric: `${kind}: overview, 24 h (3 requests at once) p50`, value: percentile(overviewMs, 50), unit: 'ms', baseline: { name: 'GET /fleet/summary p50', value: percentile(summaryMs, 50) } }, undefined),
      failedRow({ metric: `${kind}: overview, 24 h (3 requests at once) p99`, value: percentile(overviewMs, 99), unit: 'ms', baseline: { name: 'GET /fleet/summary p99', value: percentile(summaryMs, 99) }, target: '≤ 200 ms' }, undefined),
      failedRow({ metric: `${kind}: overview, 7 d (2 requests at once) p99`, value: percentile(overviewWeekMs, 99), unit: 'ms', baseline: { name: 'GET /fleet/summary p99', value: percentile(summaryMs, 99) }, target: '≤ 200 ms' }, undefined),
      { metric: `${kind}: device page series (24 h + 7 d) p99`, value: percentile(deviceMs, 99), unit: 'ms', baseline: { name: 'GET /fleet/summary p99', value: percentile(summaryMs, 99) }, target: '≤ 200 ms' },
    ];
    return {
      rows,
      raw: { sizes, bytesPerRow, transitionBytes, rowsPerDay, bytesPerDay, keptBytes, fleetBytesPerDay, synthesisSeconds: synthesized.seconds, overviewMs, overviewWeekMs, summaryMs, deviceMs },
    };
  } finally {
    await pg?.drop().catch(() => {});
    dir.cleanup();
  }
}

export async function runHistory(o: HistoryOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = { options: o, nodeVersion: process.version };

  // --- 1. Write cost through the real ingest: history off and on, rounds taken in turn -----
  // (off, on, on, off, …): measured one mode after the other, the second got a different
  // machine (a neighbour's build) and history once came out cheaper than nothing.
  const offIngest = await startIngest(o, false);
  let onIngest: Ingest | undefined;
  try {
    onIngest = await startIngest(o, true);
    for (let r = 0; r < o.rounds; r++) {
      for (const mode of r % 2 === 0 ? [offIngest, onIngest] : [onIngest, offIngest]) await mode.round();
    }
  } finally {
    await onIngest?.close();
    await offIngest.close();
  }
  const off = offIngest.result;
  const on = onIngest.result;
  raw.ingest = { off, on };
  const offUs = mean(off.cpuUsPerMessage);
  const onUs = mean(on.cpuUsPerMessage);
  const offSpread = stdev(off.cpuUsPerMessage);
  const onSpread = stdev(on.cpuUsPerMessage);
  const extra = onUs - offUs;
  const extraNoise = Math.sqrt(offSpread ** 2 + onSpread ** 2);
  const noisy = (v: number, spread: number) => (!(spread < v) ? `spread ${spread.toFixed(1)} µs is not smaller than the value` : undefined);
  rows.push(
    failedRow({ metric: 'manager CPU per status message, history off', value: offUs, spread: offSpread, unit: 'µs' }, noisy(offUs, offSpread)),
    failedRow({
      metric: 'manager CPU per status message, history on', value: onUs, spread: onSpread, unit: 'µs',
      baseline: { name: 'history off', value: offUs }, target: '≤ 1.3×',
    }, noisy(onUs, onSpread) ?? noisy(offUs, offSpread)),
    failedRow({ metric: "history's own CPU per status message (on − off)", value: extra, spread: extraNoise, unit: 'µs' },
      extra <= 0 ? `${extra.toFixed(1)} µs: negative, history's cost is below this machine's noise` : extra < extraNoise ? `${extra.toFixed(1)} µs is smaller than its noise (± ${extraNoise.toFixed(1)} µs)` : undefined),
    { metric: 'history rows written per round (on)', value: mean(on.historyRows), unit: 'rows' },
  );

  // --- 2. Store size and serving, per database ---------------------------------------------
  for (const kind of ['sqlite', ...(TEST_PG_URL ? ['postgres' as const] : [])] as const) {
    const r = await storeAndServe(kind, o);
    rows.push(...r.rows);
    raw[kind] = r.raw;
  }
  if (!TEST_PG_URL) raw.note = 'PALLAS_TEST_PG_URL not set: PostgreSQL figures skipped';
  return { rows, raw };
}
