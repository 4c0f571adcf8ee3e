/**
 * Scenario "cluster": one manager on its defaults (embedded broker, SQLite) against three
 * managers on Mosquitto and PostgreSQL behind nginx (testkit's startCluster), in the same run
 * on the same machine, with the same simulated fleet (pallas-sim's startFleet in this process):
 * - status messages persisted per second (each device's own credential, the same load
 *   generator and payloads as the fleet scenario), summed over the managers' metrics;
 * - fan-out p50/p99: one `vm.create` to every device, timed to each `succeeded` on the live
 *   stream (a warm-up fan-out first, as in the tasks scenario);
 * - failover (cluster only): a manager that has marked a fan-out's tasks sent is SIGKILLed
 *   before it publishes them (the crash-window hold `manager.task-sent`, docs/testing.md), and
 *   the time runs from the SIGKILL to the first of those tasks started on a device, which only
 *   another manager can have sent, and to the last of them succeeded.
 * Every fan-out's tasks are also checked: none lost (each final), none run twice (each device's
 * sim host created each VM name once).
 */
import { existsSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deviceTopic, type EnrollResponse, type Task } from '@pallas/protocol';
import type { PallasClient } from '@pallas/client';
import { deviceDirName, startFleet, type Fleet } from '@pallas/sim';
import { startCluster, startManagerProcess, tempDir, waitFor, type Cluster, type ManagerProcess } from '@pallas/testkit';
import { closeAll, publishAtRate } from '../lib/mosquitto.js';
import { metricValue, profileNodeArgs } from '../lib/proc.js';
import { percentile, type Row } from '../lib/stats.js';
import { absoluteNow, watchTaskOutcomes, type TaskOutcome } from '../lib/task-stream-watcher.js';
import { openDeviceSessions, scrape, statusPayloads } from './fleet.js';

export interface ClusterBenchOptions {
  devices: number;
  /** Measured fan-outs after the warm-up one. */
  rounds: number;
  statusRate: number;
  statusSeconds: number;
}

/** See the tasks scenario: each agent's inventory burst 3 s after its last task must not land in the next round. */
const SETTLE_MS = 4000;

/** What one setup (single or cluster) measured. */
interface SetupFigures {
  latencies: number[];
  roundP99: number[];
  statusPerSecond: number;
  statusOffered: number;
  statusPersisted: number;
  tasks: number;
  lost: number;
  duplicated: number;
}

/** The part of a setup the measurements need. */
interface Setup {
  name: string;
  /** Where the fleet enrolls and operators call (the load balancer for the cluster). */
  url: string;
  /** Where devices' MQTT sessions go for the status load. */
  mqttUrl: string;
  /** Every manager's own URL (for /metrics). */
  managerUrls: () => string[];
  client: () => Promise<PallasClient>;
}

function fleetDir() {
  return existsSync('/dev/shm') ? tempDir('pallas-bench-cluster-fleet-', '/dev/shm') : tempDir('pallas-bench-cluster-fleet-');
}

/** Fan-outs to every device of the fleet: a warm-up, then `rounds` measured; checks every task ended once. */
async function fanOuts(setup: Setup, admin: PallasClient, ids: string[], rounds: number, label: string, fleetPath: string): Promise<{ latencies: number[]; roundP99: number[]; tasks: number; lost: number; duplicated: number }> {
  const waiting = new Map<string, (o: TaskOutcome) => void>();
  const early = new Map<string, TaskOutcome>();
  const watcher = await watchTaskOutcomes(setup.url, admin.token!, (o) => {
    const w = waiting.get(o.taskId);
    if (w) w(o);
    else early.set(o.taskId, o);
  });
  let lost = 0;
  let tasks = 0;
  const names: string[] = [];
  try {
    const one = async (name: string): Promise<number[]> => {
      const latencies: number[] = [];
      const failed: string[] = [];
      let allDone: () => void = () => {};
      const done = new Promise<void>((resolve) => { allDone = resolve; });
      early.clear();
      const t0 = absoluteNow();
      const { taskIds } = await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
      names.push(name);
      tasks += taskIds.length;
      const record = (o: TaskOutcome) => {
        waiting.delete(o.taskId);
        if (o.state === 'succeeded') latencies.push(o.at - t0);
        else failed.push(`${o.taskId}: ${o.state} ${o.message ?? ''}`);
        if (latencies.length + failed.length === taskIds.length) allDone();
      };
      for (const id of taskIds) waiting.set(id, record);
      for (const o of early.values()) if (waiting.has(o.taskId)) record(o);
      const timer = setTimeout(allDone, 120_000);
      await done;
      clearTimeout(timer);
      for (const id of taskIds) waiting.delete(id);
      if (failed.length > 0) throw new Error(`${label}: ${failed.length} tasks did not succeed, e.g. ${failed.slice(0, 3).join('; ')}`);
      lost += taskIds.length - latencies.length;
      return latencies;
    };
    await one(`${label}-warm-up`);
    const all: number[] = [];
    const roundP99: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      await sleep(SETTLE_MS);
      const l = await one(`${label}-fan-out-${r}`);
      all.push(...l);
      roundP99.push(percentile(l, 99));
    }
    return { latencies: all, roundP99, tasks, lost, duplicated: countDuplicates(fleetPath, ids.length, names) };
  } finally {
    await watcher.stop();
  }
}

/**
 * Runs of one VM name on the devices' own hosts beyond the first. The fleet keeps no host
 * state files by default; this scenario turns them on (hostStateFiles) to count from them.
 */
function countDuplicates(fleetPath: string, devices: number, names: string[]): number {
  let extra = 0;
  for (let i = 1; i <= devices; i++) {
    const file = join(fleetPath, deviceDirName(i), 'sim-host.json');
    if (!existsSync(file)) continue;
    const sim = JSON.parse(readFileSync(file, 'utf8')) as { vms: Array<{ id: string; name: string }>; history: Array<{ op: string; vmId: string }> };
    const nameOf = new Map(sim.vms.map((v) => [v.id, v.name]));
    for (const name of names) {
      const runs = sim.history.filter((h) => h.op === 'createVm' && nameOf.get(h.vmId) === name).length;
      if (runs > 1) extra += runs - 1;
    }
  }
  return extra;
}

/** Status ingest: the fleet's sessions opened with each device's credential, status at a set rate, persisted counted. */
async function statusIngest(setup: Setup, fleetPath: string, devices: number, o: ClusterBenchOptions): Promise<{ perSecond: number; offered: number; persisted: number }> {
  const payloads = await statusPayloads(devices);
  const creds = Array.from({ length: devices }, (_, i) => JSON.parse(readFileSync(join(fleetPath, deviceDirName(i + 1), 'credential.json'), 'utf8')) as EnrollResponse);
  const sessions = await openDeviceSessions(setup.mqttUrl, creds, payloads);
  const persistedNow = async () => {
    let sum = 0;
    for (const url of setup.managerUrls()) sum += metricValue(await scrape(url), 'pallas_status_messages_persisted_total');
    return sum;
  };
  try {
    await sleep(1000); // the sessions' first status lands
    const before = await persistedNow();
    const t0 = performance.now();
    const offered = await publishAtRate(sessions, (i) => deviceTopic(creds[i]!.deviceId, 'status'), (i) => payloads[i]!, o.statusRate, o.statusSeconds);
    let persisted = 0;
    for (let tries = 0; tries < 150; tries++) {
      persisted = (await persistedNow()) - before;
      if (persisted >= offered) break;
      await sleep(100);
    }
    return { perSecond: persisted / ((performance.now() - t0) / 1000), offered, persisted };
  } finally {
    await closeAll(sessions);
  }
}

async function measure(setup: Setup, o: ClusterBenchOptions, label: string, after?: (fleet: Fleet, ids: string[], admin: PallasClient, fleetPath: string) => Promise<void>): Promise<SetupFigures> {
  const dir = fleetDir();
  let fleet: Fleet | undefined;
  try {
    const admin = await setup.client();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    // Errors of the simulated devices (a refused enrollment, a stopped agent) go to stderr.
    fleet = await startFleet({ manager: setup.url, token, devices: o.devices, stateDir: dir.path, statusIntervalSec: 86400, logger: pino({ level: 'error' }, pino.destination(2)) });
    await fleet.waitOnline(o.devices, 120_000);
    const ids = fleet.agents.map((a) => a.deviceId!);
    console.log(`# ${setup.name}: ${o.devices} devices online; fan-outs`);
    const f = await fanOuts(setup, admin, ids, o.rounds, label, dir.path);
    await after?.(fleet, ids, admin, dir.path);
    await fleet.stop();
    fleet = undefined;
    console.log(`# ${setup.name}: status ingest`);
    const s = await statusIngest(setup, dir.path, o.devices, o);
    return { latencies: f.latencies, roundP99: f.roundP99, statusPerSecond: s.perSecond, statusOffered: s.offered, statusPersisted: s.persisted, tasks: f.tasks, lost: f.lost, duplicated: f.duplicated };
  } finally {
    await fleet?.stop();
    dir.cleanup();
  }
}

/**
 * Failover: manager 1 restarted with the hold armed; a fan-out sent to it directly; once it has
 * marked a round of tasks sent (the hold file says which) it is SIGKILLed. Measured from the
 * SIGKILL: the first held task started on its device (sent by another manager), and the last
 * held task succeeded. Every held task must succeed, once.
 */
async function failover(cluster: Cluster, admin: PallasClient, ids: string[], fleetPath: string): Promise<{ firstMs: number; allMs: number; held: number; lost: number; duplicated: number }> {
  const holdDir = tempDir('pallas-bench-hold-');
  const holdFile = join(holdDir.path, 'hold');
  try {
    await cluster.kill(0);
    await cluster.restart(0, { env: { PALLAS_TEST_HOLD: 'manager.task-sent', PALLAS_TEST_HOLD_FILE: holdFile } });
    await sleep(SETTLE_MS);
    const direct = await cluster.managers[0]!.client();
    const name = 'failover';
    const { taskIds } = await direct.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
    const held = await waitFor('manager 1 to hold after marking tasks sent', () => existsSync(holdFile) && readFileSync(holdFile, 'utf8').trim() !== '' && (JSON.parse(readFileSync(holdFile, 'utf8').split('\n')[0]!) as { taskIds: string[] }).taskIds, { timeoutMs: 30_000, intervalMs: 5 });
    const killedAt = Date.now();
    await cluster.kill(0);
    const heldSet = new Set(held);
    const final = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
    const tasks = await waitFor('every task of the fan-out final', async () => {
      const all = (await admin.all('listTasks')).filter((t: Task) => taskIds.includes(t.id));
      return all.length === taskIds.length && all.every((t) => final.has(t.state)) && all;
    }, { timeoutMs: 120_000, intervalMs: 250 });
    const heldTasks = tasks.filter((t) => heldSet.has(t.id));
    const notSucceeded = tasks.filter((t) => t.state !== 'succeeded');
    if (notSucceeded.length > 0) throw new Error(`failover: ${notSucceeded.length} tasks did not succeed, e.g. ${notSucceeded.slice(0, 3).map((t) => `${t.id} ${t.state} ${t.error?.message ?? ''}`).join('; ')}`);
    const started = heldTasks.map((t) => Date.parse(t.startedAt!) - killedAt);
    const finished = heldTasks.map((t) => Date.parse(t.finishedAt!) - killedAt);
    if (Math.min(...started) < 0) throw new Error(`failover: a held task started ${-Math.min(...started)} ms before the SIGKILL: the hold did not hold`);
    await cluster.restart(0);
    return { firstMs: Math.min(...started), allMs: Math.max(...finished), held: held.length, lost: taskIds.length - tasks.length, duplicated: countDuplicates(fleetPath, ids.length, [name]) };
  } finally {
    holdDir.cleanup();
  }
}

export async function runCluster(o: ClusterBenchOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  // --- Baseline: one manager on its defaults -------------------------------------------
  const dir = tempDir('pallas-bench-single-');
  let single: SetupFigures;
  const manager: ManagerProcess = await startManagerProcess({ dataDir: join(dir.path, 'manager'), database: 'sqlite', args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'] });
  try {
    single = await measure({
      name: 'one manager, embedded broker, SQLite', url: manager.httpUrl, mqttUrl: manager.mqttUrl,
      managerUrls: () => [manager.httpUrl], client: () => manager.client(),
    }, o, 'single');
  } finally {
    await manager.close();
    dir.cleanup();
  }

  // --- Three managers on Mosquitto and PostgreSQL behind nginx ----------------------------
  const cluster = await startCluster({
    managers: 3, managerArgs: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
    // PALLAS_BENCH_PROFILE=<dir> writes a CPU profile of each manager there, as in `fleet`.
    nodeArgs: profileNodeArgs(),
  });
  let clustered: SetupFigures;
  let fo: Awaited<ReturnType<typeof failover>> | undefined;
  try {
    clustered = await measure({
      name: 'three managers, Mosquitto, PostgreSQL, nginx', url: cluster.url, mqttUrl: cluster.broker.url,
      managerUrls: () => cluster.managers.map((m) => m.httpUrl), client: () => cluster.client(),
    }, o, 'cluster', async (_fleet, ids, admin, fleetPath) => {
      console.log('# cluster: failover');
      await sleep(SETTLE_MS);
      fo = await failover(cluster, admin, ids, fleetPath);
    });
  } finally {
    // What went wrong inside the managers, if anything: errors are part of the result.
    for (const [i, m] of cluster.managers.entries()) {
      const errors = m.output().split('\n').filter((l) => /"level":(50|60)/.test(l));
      if (errors.length > 0) console.log(`# manager ${i + 1}: ${errors.length} errors logged, e.g. ${[...new Set(errors.map((l) => { try { const j = JSON.parse(l) as { msg?: string; err?: { message?: string } }; return `${j.msg ?? ''}: ${j.err?.message ?? ''}`; } catch { return l.slice(0, 120); } }))].slice(0, 4).join(' | ')}`);
    }
    await cluster.close();
  }

  const p = (l: number[], q: number) => percentile(l, q);
  const base = (value: number) => ({ baseline: { name: 'one manager', value } });
  const rows: Row[] = [
    { metric: 'status msgs/s persisted', value: clustered.statusPerSecond, unit: '/s', ...base(single.statusPerSecond) },
    { metric: 'fan-out created → succeeded p50', value: p(clustered.latencies, 50), unit: 'ms', ...base(p(single.latencies, 50)) },
    { metric: 'fan-out created → succeeded p99', value: p(clustered.latencies, 99), unit: 'ms', target: '≤ 1.5× one manager', ...base(p(single.latencies, 99)) },
    { metric: 'worst round p99', value: Math.max(...clustered.roundP99), unit: 'ms', ...base(Math.max(...single.roundP99)) },
    { metric: 'failover: SIGKILL → first held task started elsewhere', value: fo?.firstMs ?? Number.NaN, unit: 'ms', target: '≤ 5000 ms' },
    { metric: 'failover: SIGKILL → last held task succeeded', value: fo?.allMs ?? Number.NaN, unit: 'ms' },
    { metric: 'tasks lost', value: clustered.lost + (fo?.lost ?? 0), unit: '', target: '0', ...base(single.lost) },
    { metric: 'tasks run twice on a device', value: clustered.duplicated + (fo?.duplicated ?? 0), unit: '', target: '0', ...base(single.duplicated) },
  ];
  const raw = {
    devices: o.devices,
    rounds: o.rounds,
    single: { ...summary(single) },
    cluster: { ...summary(clustered), failover: fo },
  };
  return { rows, raw };
}

function summary(f: SetupFigures) {
  return {
    p50: percentile(f.latencies, 50), p99: percentile(f.latencies, 99), roundP99: f.roundP99,
    statusPerSecond: f.statusPerSecond, statusOffered: f.statusOffered, statusPersisted: f.statusPersisted,
    tasks: f.tasks, lost: f.lost, duplicated: f.duplicated,
  };
}
