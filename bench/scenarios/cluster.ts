/**
 * Scenario "cluster": one manager on its defaults (embedded broker, SQLite) against three
 * managers on Mosquitto and PostgreSQL behind nginx (testkit's startCluster), in the same run
 * on the same machine, side by side, each with a simulated fleet of the same size (pallas-sim's
 * startFleet in this process), their fan-outs alternated round by round:
 * - status messages persisted per second (each device's own credential, the same load
 *   generator and payloads as the fleet scenario), summed over the managers' metrics;
 * - fan-out p50/p99: one `vm.create` to every device, timed to each `succeeded` on the live
 *   stream, after `warmups` unmeasured fan-outs (each setup's code compiled by then; the first
 *   one after the start is reported apart, for the record);
 * - failover (cluster only): a manager that has marked a fan-out's tasks sent is SIGKILLed
 *   before it publishes them (the crash-window hold `manager.task-sent`, docs/testing.md), and
 *   the time runs from the SIGKILL to the first of those tasks started on a device, which only
 *   another manager can have sent, and to the last of them succeeded.
 * Every fan-out's tasks are also checked: none lost (each final), none run twice (each started
 * once on its device: the agents' own `task-started` events, counted in this process).
 * For the record, the CPU per task of each setup's own processes and of the fleet beside them,
 * over the measured rounds: on two shared cores, what the ratio is made of.
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
import { PolledCpu, clusterProcesses, metricValue, profileNodeArgs } from '../lib/proc.js';
import { failedRow, percentile, type Row } from '../lib/stats.js';
import { absoluteNow, watchTaskOutcomes, type TaskOutcome } from '../lib/task-stream-watcher.js';
import { tasksOnDevices, type TaskOnDevice } from '../lib/tasks-on-devices.js';
import { openDeviceSessions, scrape, statusPayloads } from './fleet.js';

export interface ClusterBenchOptions {
  devices: number;
  /** Measured fan-outs after the warm-up ones. */
  rounds: number;
  /**
   * Unmeasured fan-outs first, alternated as the measured ones. V8 compiles a manager's hot
   * code during its first fan-outs, and three managers each compile all of it: their first
   * rounds spent a fifth of their CPU in the optimizing compiler, a tenth from the fourth
   * (docs/benchmarks.md, 2026-12-07 07:29), and their rounds were still getting faster.
   */
  warmups: number;
  statusRate: number;
  statusSeconds: number;
}

/** See the tasks scenario: each agent's inventory burst 3 s after its last task must not land in the next round. */
const SETTLE_MS = 4000;

/** What one setup (single or cluster) measured. */
interface SetupFigures {
  latencies: number[];
  roundP99: number[];
  /** The first fan-out after the start (unmeasured). */
  coldP99: number;
  /** Each measured task's time on its device: start journaled → result journaled (agent events). */
  deviceTimes: number[];
  statusPerSecond: number;
  statusOffered: number;
  statusPersisted: number;
  tasks: number;
  lost: number;
  duplicated: number;
  /** CPU seconds over the measured rounds and their settling, by kind of process. */
  cpu: Map<string, number>;
  measuredTasks: number;
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
  /** The setup's own processes by kind (read again at each poll: PostgreSQL's backends come and go). */
  pids: () => ReadonlyMap<string, readonly number[]>;
}

/** The benchmark process itself: both setups' simulated fleets run here, and their live-stream watchers. */
const FLEET = 'this process: the simulated fleets and stream watchers';

function fleetDir() {
  return existsSync('/dev/shm') ? tempDir('pallas-bench-cluster-fleet-', '/dev/shm') : tempDir('pallas-bench-cluster-fleet-');
}

/**
 * One setup's fan-outs to every device of its fleet, one at a time (`run`), timed to each
 * `succeeded` on the setup's live stream; `close` checks that every task ended once.
 */
class FanOuts {
  readonly latencies: number[] = [];
  readonly roundP99: number[] = [];
  readonly deviceTimes: number[] = [];
  /** CPU seconds by kind over this setup's measured rounds, each up to the next round's start. */
  readonly cpu = new Map<string, number>();
  /** p99 of the first fan-out after the start (a warm-up, not in the figures above). */
  coldP99 = Number.NaN;
  measuredTasks = 0;
  #tasks = 0;
  #lost = 0;
  readonly #taskIds: string[] = [];
  readonly #waiting = new Map<string, (o: TaskOutcome) => void>();
  readonly #early = new Map<string, TaskOutcome>();
  #watcher: { stop: () => Promise<void> } | undefined;

  private constructor(readonly prepared: Prepared) {}

  static async open(prepared: Prepared): Promise<FanOuts> {
    const f = new FanOuts(prepared);
    f.#watcher = await watchTaskOutcomes(prepared.setup.url, prepared.admin.token!, (o) => {
      const w = f.#waiting.get(o.taskId);
      if (w) w(o);
      else f.#early.set(o.taskId, o);
    });
    return f;
  }

  /** One fan-out; `measured` adds its latencies to the figures (the warm-up's are not). */
  async run(name: string, measured: boolean): Promise<void> {
    const { admin, ids, label } = this.prepared;
    const latencies: number[] = [];
    const failed: string[] = [];
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => { allDone = resolve; });
    this.#early.clear();
    const t0 = absoluteNow();
    const { taskIds } = await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name: `${label}-${name}`, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
    this.#taskIds.push(...taskIds);
    this.#tasks += taskIds.length;
    const record = (o: TaskOutcome) => {
      this.#waiting.delete(o.taskId);
      if (o.state === 'succeeded') latencies.push(o.at - t0);
      else failed.push(`${o.taskId}: ${o.state} ${o.message ?? ''}`);
      if (latencies.length + failed.length === taskIds.length) allDone();
    };
    for (const id of taskIds) this.#waiting.set(id, record);
    for (const o of this.#early.values()) if (this.#waiting.has(o.taskId)) record(o);
    const timer = setTimeout(allDone, 120_000);
    await done;
    clearTimeout(timer);
    for (const id of taskIds) this.#waiting.delete(id);
    if (failed.length > 0) throw new Error(`${label}: ${failed.length} tasks did not succeed, e.g. ${failed.slice(0, 3).join('; ')}`);
    this.#lost += taskIds.length - latencies.length;
    if (Number.isNaN(this.coldP99)) this.coldP99 = percentile(latencies, 99);
    if (measured) {
      this.measuredTasks += taskIds.length;
      this.latencies.push(...latencies);
      this.roundP99.push(percentile(latencies, 99));
      for (const id of taskIds) {
        const d = this.prepared.onDevice.get(id);
        if (d?.finished !== undefined) this.deviceTimes.push(d.finished - d.started);
      }
    }
  }

  async close(): Promise<{ tasks: number; lost: number; duplicated: number }> {
    await this.#watcher?.stop();
    return { tasks: this.#tasks, lost: this.#lost, duplicated: runsBeyondTheFirst(this.prepared.onDevice, this.#taskIds) };
  }
}

/**
 * Runs of these tasks on their devices beyond the first, from each agent's `task-started`
 * event (emitted each time the agent hands a task to its driver). Counted on the devices rather
 * than from the sim hosts' state files: the fleet keeps none here (`hostStateFiles: false`, as
 * in the tasks scenario), since writing one atomically per VM change was a quarter of the
 * fleet's CPU, on cores the setups under test share.
 */
function runsBeyondTheFirst(onDevice: ReadonlyMap<string, TaskOnDevice>, taskIds: readonly string[]): number {
  let extra = 0;
  for (const id of taskIds) extra += Math.max(0, (onDevice.get(id)?.runs ?? 0) - 1);
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

/** A setup with its fleet enrolled and online. */
interface Prepared {
  setup: Setup;
  label: string;
  admin: PallasClient;
  fleet: Fleet;
  ids: string[];
  fleetPath: string;
  /** Task id → what this fleet's agents did with it. */
  onDevice: ReadonlyMap<string, TaskOnDevice>;
  /** Set once the fleet is stopped (for the status load). */
  stopped: boolean;
  cleanup: () => void;
}

async function prepare(setup: Setup, o: ClusterBenchOptions, label: string): Promise<Prepared> {
  const dir = fleetDir();
  try {
    const admin = await setup.client();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    // Errors of the simulated devices (a refused enrollment, a stopped agent) go to stderr.
    const onDevice = tasksOnDevices();
    const fleet = await startFleet({
      manager: setup.url, token, devices: o.devices, stateDir: dir.path, statusIntervalSec: 86400, hostStateFiles: false,
      logger: pino({ level: 'error' }, pino.destination(2)),
      onAgent: onDevice.onAgent,
    });
    try {
      await fleet.waitOnline(o.devices, 120_000);
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    console.log(`# ${setup.name}: ${o.devices} devices online`);
    return { setup, label, admin, fleet, ids: fleet.agents.map((a) => a.deviceId!), fleetPath: dir.path, onDevice: onDevice.tasks, stopped: false, cleanup: () => dir.cleanup() };
  } catch (err) {
    dir.cleanup();
    throw err;
  }
}

/**
 * The two setups' fan-outs, alternated round by round (a warm-up each first): one setup after
 * the other, the ratio moved by up to 0.4× between sets of runs of the same code a quarter of
 * an hour apart (docs/benchmarks.md, scenario cluster), the machine's state more than the code.
 * The order within a pair alternates too, so neither setup always goes first.
 */
async function alternatedFanOuts(a: Prepared, b: Prepared, rounds: number, warmups: number): Promise<[FanOuts, FanOuts]> {
  const fa = await FanOuts.open(a);
  const fb = await FanOuts.open(b);
  console.log(`# fan-outs, ${a.label} and ${b.label} alternated (${warmups} warm-up each, then ${rounds} measured)`);
  let first = true;
  for (let w = 1; w <= warmups; w++) {
    for (const f of w % 2 === 1 ? [fa, fb] : [fb, fa]) {
      if (!first) await sleep(SETTLE_MS);
      first = false;
      await f.run(`warm-up-${w}`, false);
    }
  }
  // Each measured round's CPU runs to the start of the next round, so that the work a round
  // leaves behind (the agents' status reports 3 s after their tasks) is counted with it.
  let counting: { f: FanOuts; cpu: PolledCpu } | undefined;
  const stopCounting = () => {
    if (!counting) return;
    for (const [kind, seconds] of counting.cpu.stop()) counting.f.cpu.set(kind, (counting.f.cpu.get(kind) ?? 0) + seconds);
    counting = undefined;
  };
  for (let r = 1; r <= rounds; r++) {
    for (const f of r % 2 === 1 ? [fa, fb] : [fb, fa]) {
      await sleep(SETTLE_MS);
      stopCounting();
      counting = { f, cpu: new PolledCpu(() => new Map([...f.prepared.setup.pids(), [FLEET, [process.pid]]])) };
      await f.run(`fan-out-${r}`, true);
    }
  }
  await sleep(SETTLE_MS);
  stopCounting();
  return [fa, fb];
}

/** Status ingest on a setup whose fleet is stopped (its sessions take the devices' credentials). */
async function statusOf(p: Prepared, o: ClusterBenchOptions): Promise<{ perSecond: number; offered: number; persisted: number }> {
  await p.fleet.stop();
  p.stopped = true;
  console.log(`# ${p.setup.name}: status ingest`);
  return statusIngest(p.setup, p.fleetPath, o.devices, o);
}

/**
 * Failover: manager 1 restarted with the hold armed; a fan-out sent to it directly; once it has
 * marked a round of tasks sent (the hold file says which) it is SIGKILLed. Measured from the
 * SIGKILL: the first held task started on its device (sent by another manager), and the last
 * held task succeeded. Every held task must succeed, once.
 */
async function failover(cluster: Cluster, admin: PallasClient, ids: string[], onDevice: ReadonlyMap<string, TaskOnDevice>): Promise<{ firstMs: number; allMs: number; held: number; lost: number; duplicated: number }> {
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
    return { firstMs: Math.min(...started), allMs: Math.max(...finished), held: held.length, lost: taskIds.length - tasks.length, duplicated: runsBeyondTheFirst(onDevice, taskIds) };
  } finally {
    holdDir.cleanup();
  }
}

export async function runCluster(o: ClusterBenchOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  if (!Number.isInteger(o.warmups) || o.warmups < 1) throw new Error(`--warmup-rounds is a whole number of at least 1, not ${o.warmups}`);
  // Both setups run side by side, each with its own fleet, so that their fan-outs alternate.
  // One manager on its defaults, the baseline:
  const dir = tempDir('pallas-bench-single-');
  // PALLAS_BENCH_PROFILE=<dir>: a CPU profile of every manager, this one's too, as in `fleet`.
  const manager: ManagerProcess = await startManagerProcess({ dataDir: join(dir.path, 'manager'), database: 'sqlite', args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'], nodeArgs: profileNodeArgs() });
  // Three managers on Mosquitto and PostgreSQL behind nginx:
  let cluster: Cluster | undefined;
  const prepared: Prepared[] = [];
  let single: SetupFigures;
  let clustered: SetupFigures;
  let fo: Awaited<ReturnType<typeof failover>> | undefined;
  try {
    cluster = await startCluster({
      managers: 3, managerArgs: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
      // A fresh database on this PostgreSQL server, the local one unless told (as `npm run cluster`).
      pgUrl: process.env.PALLAS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      nodeArgs: profileNodeArgs(),
    });
    const c = cluster;
    const s1 = await prepare({
      name: 'one manager, embedded broker, SQLite', url: manager.httpUrl, mqttUrl: manager.mqttUrl,
      managerUrls: () => [manager.httpUrl], client: () => manager.client(),
      pids: () => new Map([['manager', [manager.pid]]]),
    }, o, 'single');
    prepared.push(s1);
    const c1 = await prepare({
      name: 'three managers, Mosquitto, PostgreSQL, nginx', url: c.url, mqttUrl: c.broker.url,
      managerUrls: () => c.managers.map((m) => m.httpUrl), client: () => c.client(),
      pids: () => new Map(clusterProcesses(c)),
    }, o, 'cluster');
    prepared.push(c1);
    const [fs, fc] = await alternatedFanOuts(s1, c1, o.rounds, o.warmups);
    const sEnd = await fs.close();
    // Closed before the failover kills a manager: the stream may be on it.
    const cEnd = await fc.close();
    console.log('# cluster: failover');
    await sleep(SETTLE_MS);
    fo = await failover(c, c1.admin, c1.ids, c1.onDevice);
    // Status last, one setup at a time: the other's fleet stopped first.
    const cs = await statusOf(c1, o);
    const ss = await statusOf(s1, o);
    single = figuresOf(fs, ss, sEnd);
    clustered = figuresOf(fc, cs, cEnd);
  } finally {
    for (const p of prepared) {
      if (!p.stopped) await p.fleet.stop().catch(() => {});
      p.cleanup();
    }
    if (cluster) {
      // What went wrong inside the managers, if anything: errors are part of the result.
      for (const [i, m] of cluster.managers.entries()) {
        const errors = m.output().split('\n').filter((l) => /"level":(50|60)/.test(l));
        if (errors.length > 0) console.log(`# manager ${i + 1}: ${errors.length} errors logged, e.g. ${[...new Set(errors.map((l) => { try { const j = JSON.parse(l) as { msg?: string; err?: { message?: string } }; return `${j.msg ?? ''}: ${j.err?.message ?? ''}`; } catch { return l.slice(0, 120); } }))].slice(0, 4).join(' | ')}`);
      }
      await cluster.close();
    }
    await manager.close();
    dir.cleanup();
  }

  const p = (l: number[], q: number) => percentile(l, q);
  const base = (value: number) => ({ baseline: { name: 'one manager', value } });
  const rows: Row[] = [
    { metric: 'status msgs/s persisted', value: clustered.statusPerSecond, unit: '/s', ...base(single.statusPerSecond) },
    { metric: 'fan-out created → succeeded p50', value: p(clustered.latencies, 50), unit: 'ms', ...base(p(single.latencies, 50)) },
    { metric: 'fan-out created → succeeded p99', value: p(clustered.latencies, 99), unit: 'ms', target: '≤ 1.5× one manager', ...base(p(single.latencies, 99)) },
    { metric: 'worst round p99', value: Math.max(...clustered.roundP99), unit: 'ms', ...base(Math.max(...single.roundP99)) },
    // For the record, not a target: what the first fan-out after a start takes, code not yet
    // compiled (three managers compile it three times, on the same two cores).
    { metric: 'first fan-out after the start p99 (warm-up)', value: clustered.coldP99, unit: 'ms', ...base(single.coldP99) },
    // Not the setups' own work: the simulated devices' (a 50 ms operation, two journal writes),
    // stretched by how much of the two cores the fleet gets beside each setup.
    { metric: 'time on the devices p50 (of the fan-out)', value: p(clustered.deviceTimes, 50), unit: 'ms', ...base(p(single.deviceTimes, 50)) },
    // What bounds the ratio on a machine the setups share with the fleet: the CPU each setup's
    // own processes spend per task (the cluster's managers, Mosquitto, nginx and database
    // backends; the one manager), and the fleet's beside them.
    cpuRow('CPU per task: the setup\'s own processes', setupCpuPerTask(clustered), setupCpuPerTask(single)),
    cpuRow('CPU per task: the simulated fleet (and watcher)', fleetCpuPerTask(clustered), fleetCpuPerTask(single)),
    { metric: 'failover: SIGKILL → first held task started elsewhere', value: fo?.firstMs ?? Number.NaN, unit: 'ms', target: '≤ 5000 ms' },
    { metric: 'failover: SIGKILL → last held task succeeded', value: fo?.allMs ?? Number.NaN, unit: 'ms' },
    { metric: 'tasks lost', value: clustered.lost + (fo?.lost ?? 0), unit: '', target: '0', ...base(single.lost) },
    { metric: 'tasks run twice on a device', value: clustered.duplicated + (fo?.duplicated ?? 0), unit: '', target: '0', ...base(single.duplicated) },
  ];
  const raw = {
    devices: o.devices,
    rounds: o.rounds,
    warmups: o.warmups,
    alternated: true,
    single: { ...summary(single) },
    cluster: { ...summary(clustered), failover: fo },
  };
  return { rows, raw };
}

/** One setup's figures: its fan-outs, its status ingest, and the check of its tasks at the end. */
function figuresOf(f: FanOuts, status: Awaited<ReturnType<typeof statusOf>>, end: Awaited<ReturnType<FanOuts['close']>>): SetupFigures {
  return {
    latencies: f.latencies, roundP99: f.roundP99, coldP99: f.coldP99, deviceTimes: f.deviceTimes, cpu: f.cpu, measuredTasks: f.measuredTasks,
    statusPerSecond: status.perSecond, statusOffered: status.offered, statusPersisted: status.persisted,
    ...end,
  };
}

function summary(f: SetupFigures) {
  return {
    p50: percentile(f.latencies, 50), p99: percentile(f.latencies, 99), roundP99: f.roundP99, coldP99: f.coldP99,
    deviceP50: percentile(f.deviceTimes, 50), deviceP99: percentile(f.deviceTimes, 99),
    statusPerSecond: f.statusPerSecond, statusOffered: f.statusOffered, statusPersisted: f.statusPersisted,
    tasks: f.tasks, lost: f.lost, duplicated: f.duplicated,
    cpuSecondsOfMeasuredRounds: Object.fromEntries(f.cpu), measuredTasks: f.measuredTasks,
  };
}

/** µs of CPU per measured task, of the setup's own processes (everything but the fleet). */
function setupCpuPerTask(f: SetupFigures): number {
  let seconds = 0;
  for (const [kind, s] of f.cpu) if (kind !== FLEET) seconds += s;
  return (seconds / f.measuredTasks) * 1e6;
}

function fleetCpuPerTask(f: SetupFigures): number {
  return ((f.cpu.get(FLEET) ?? 0) / f.measuredTasks) * 1e6;
}

/** A CPU figure that is not positive was not measured (a process not found, no tasks). */
function cpuRow(metric: string, value: number, baseline: number): Row {
  const row: Row = { metric, value, unit: 'µs', baseline: { name: 'one manager', value: baseline } };
  return failedRow(row, value > 0 && baseline > 0 ? undefined : `${Math.round(value)} and ${Math.round(baseline)} µs: a CPU figure must be positive`);
}
