/**
 * Scenario "tasks": one task fanned out to N simulated devices (`POST /api/v1/tasks` with every
 * device id), timed from the request to each task's `succeeded` as the live stream reports it,
 * i.e. what an operator watching the console sees. The devices are real agents (sim driver,
 * journal, fsync and all, on a RAM disk: see fleetStateDir) in this process; the manager is its
 * own process on SQLite, on disk.
 * A first fan-out warms both up; the figures pool the tasks of the `rounds` fan-outs after it.
 * Baseline: the same fan-out as bare MQTT request/reply through Mosquitto, which is the floor
 * that any broker round trip sets.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet } from '@pallas/sim';
import type { Task } from '@pallas/protocol';
import type { PallasClient } from '@pallas/client';
import { startManagerProcess, tempDir } from '@pallas/testkit';
import { fanOutRoundTrip, mosquittoAvailable, MOSQUITTO_URL } from '../lib/mosquitto.js';
import { metricValue, profileNodeArgs } from '../lib/proc.js';
import { absoluteNow, watchTaskOutcomes, type TaskOutcome } from '../lib/task-stream-watcher.js';
import { percentile, type Row } from '../lib/stats.js';

export interface TasksOptions {
  devices: number;
  /** Measured fan-outs after the warm-up one. */
  rounds: number;
  /** Where the simulated devices keep their state dirs. Default: /dev/shm if the machine has it (see below). */
  fleetDir?: string;
}

/**
 * The simulated devices' state dirs (journal, credential) go to a RAM disk by default. Each
 * device of a real fleet has its own disk; here 2,000 devices would share one, and the
 * kernel's work for their 4,000 fsyncs per fan-out, which no real device does for another,
 * would take the two cores from the manager (fleet CPU per task ~1.3× higher on disk). The
 * agent's code path is the same: every write and fdatasync is still called.
 */
function fleetStateDir(parent: string | undefined): { path: string; cleanup: () => void } {
  const base = parent ?? (existsSync('/dev/shm') ? '/dev/shm' : undefined);
  return base ? tempDir('pallas-bench-fleet-', base) : tempDir('pallas-bench-fleet-');
}

/**
 * Between fan-outs: each agent reports its inventory 3 s after its last task ended
 * (StatusReporter.reportNow), and that burst must not land in the next round.
 */
const SETTLE_MS = 4000;

/** One fan-out's figures. */
interface Round {
  /** ms from the request to each task's `succeeded` on the stream. */
  latencies: number[];
  acceptedMs: number;
  managerCpuMs: number;
  fleetCpuMs: number;
  /** ms from the request to each stage, from the manager's timestamps on the tasks. */
  stages: Record<'sent' | 'started' | 'finished' | 'seen', number[]>;
}

export async function runTasks(o: TasksOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = tempDir('pallas-bench-tasks-');
  const manager = await startManagerProcess({
    dataDir: join(dir.path, 'manager'),
    args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
    nodeArgs: profileNodeArgs(),
  });
  const fleetDir = fleetStateDir(o.fleetDir);
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  let watcher: Awaited<ReturnType<typeof watchTaskOutcomes>> | undefined;
  try {
    const admin = await manager.client();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    fleet = await startFleet({ manager: manager.httpUrl, token, devices: o.devices, stateDir: fleetDir.path, statusIntervalSec: 86400, hostStateFiles: false });
    await fleet.waitOnline(o.devices, 180_000);
    const ids = fleet.agents.map((a) => a.deviceId!);

    // Follow the live stream, as the console does (on a thread of its own: see the watcher).
    // Outcomes go to the round that created the task; one that comes before the request has
    // returned the ids waits in `early`.
    const waiting = new Map<string, (outcome: TaskOutcome) => void>();
    const early = new Map<string, TaskOutcome>();
    watcher = await watchTaskOutcomes(manager.httpUrl, admin.token!, (outcome) => {
      const w = waiting.get(outcome.taskId);
      if (w) w(outcome);
      else early.set(outcome.taskId, outcome);
    });

    // CPU each side spends: the manager's from its own metrics, the simulated fleet's (this
    // process: N agents) from cpuUsage.
    const managerCpu = async () => metricValue(await (await fetch(`${manager.httpUrl}/metrics`)).text(), 'pallas_process_cpu_seconds_total');
    const fanOut = async (name: string): Promise<Round> => {
      const managerCpu0 = await managerCpu();
      const fleetCpu0 = process.cpuUsage();
      const latencies: number[] = [];
      const failed: string[] = [];
      let allDone: () => void = () => {};
      const done = new Promise<void>((resolve) => { allDone = resolve; });
      early.clear();
      const t0 = absoluteNow();
      const { taskIds } = await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
      const acceptedMs = absoluteNow() - t0;
      const record = (outcome: TaskOutcome): void => {
        waiting.delete(outcome.taskId);
        if (outcome.state === 'succeeded') latencies.push(outcome.at - t0);
        else failed.push(`${outcome.taskId}: ${outcome.state} ${outcome.message ?? ''}`);
        if (latencies.length + failed.length === taskIds.length) allDone();
      };
      for (const id of taskIds) waiting.set(id, record);
      for (const outcome of early.values()) if (waiting.has(outcome.taskId)) record(outcome);
      const timeout = setTimeout(allDone, 60_000);
      await done;
      clearTimeout(timeout);
      const managerCpuMs = (await managerCpu() - managerCpu0) * 1000;
      const fleetUsage = process.cpuUsage(fleetCpu0);
      for (const id of taskIds) waiting.delete(id);
      if (failed.length > 0) throw new Error(`${failed.length} tasks did not succeed, e.g. ${failed.slice(0, 3).join('; ')}`);
      if (latencies.length < taskIds.length) throw new Error(`only ${latencies.length} of ${taskIds.length} tasks succeeded within 60 s`);
      const stages = { ...await stageTimes(admin, new Set(taskIds), t0), seen: latencies };
      return { latencies, acceptedMs, managerCpuMs, fleetCpuMs: (fleetUsage.user + fleetUsage.system) / 1000, stages };
    };

    // Warm-up: a whole fan-out first, so that both sides run optimized code when measured (a
    // manager in service has run these paths many times). 20 tasks were not enough: the first
    // 2,000 then ran half in V8's interpreter while its compiler threads took CPU from both.
    await fanOut('warm-up');
    const rounds: Round[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      rounds.push(await fanOut(`fan-out-${r}`));
    }

    let floor: number[] | undefined;
    if (await mosquittoAvailable()) {
      floor = [];
      for (let r = 0; r < o.rounds; r++) floor.push(...await fanOutRoundTrip(MOSQUITTO_URL, o.devices, `pallas-bench-${process.pid}-${r}`));
    }
    const base = (p: number) => (floor ? { baseline: { name: 'Mosquitto request/reply', value: percentile(floor, p) } } : {});
    const all = rounds.flatMap((r) => r.latencies);
    const tasks = all.length;
    const sum = (f: (r: Round) => number) => rounds.reduce((s, r) => s + f(r), 0);
    const rows: Row[] = [
      { metric: 'POST /tasks accepted (median)', value: percentile(rounds.map((r) => r.acceptedMs), 50), unit: 'ms' },
      { metric: 'created → succeeded p50', value: percentile(all, 50), unit: 'ms', ...base(50) },
      { metric: 'created → succeeded p99', value: percentile(all, 99), unit: 'ms', target: '< 2000 ms', ...base(99) },
      { metric: 'worst round p99', value: Math.max(...rounds.map((r) => percentile(r.latencies, 99))), unit: 'ms' },
      { metric: 'tasks/s through the engine', value: tasks / (sum((r) => Math.max(...r.latencies)) / 1000), unit: '/s' },
      { metric: 'manager CPU per task', value: sum((r) => r.managerCpuMs) / tasks, unit: 'ms' },
      { metric: 'simulated fleet CPU per task', value: sum((r) => r.fleetCpuMs) / tasks, unit: 'ms' },
    ];

    // Where the time went: each stage's p1/p50/p99 over the measured rounds (sent: marked sent
    // by the outbox; started: the agent's first progress stored; finished: the result stored;
    // seen: on the live stream).
    console.log(`\nsimulated devices' state in ${fleetDir.path}; ${o.rounds} fan-outs of ${o.devices} after a warm-up one; p99 per round: ${rounds.map((r) => Math.round(percentile(r.latencies, 99))).join(', ')} ms`);
    console.log('stages, ms after the request:');
    const stages: Record<string, { p50: number; p99: number }> = {};
    for (const stage of ['sent', 'started', 'finished', 'seen'] as const) {
      const values = rounds.flatMap((r) => r.stages[stage]);
      console.log(`  ${stage.padEnd(9)} p1 ${Math.round(percentile(values, 1))}  p50 ${Math.round(percentile(values, 50))}  p99 ${Math.round(percentile(values, 99))}`);
      stages[stage] = { p50: percentile(values, 50), p99: percentile(values, 99) };
    }
    const raw = {
      devices: o.devices,
      fleetDir: fleetDir.path,
      stages,
      rounds: rounds.map((r) => ({ acceptedMs: r.acceptedMs, managerCpuMs: r.managerCpuMs, fleetCpuMs: r.fleetCpuMs, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), max: Math.max(...r.latencies) })),
      floor: floor && { p50: percentile(floor, 50), p99: percentile(floor, 99) },
    };
    return { rows, raw };
  } finally {
    await watcher?.stop();
    await fleet?.stop();
    await manager.close();
    dir.cleanup();
    fleetDir.cleanup();
  }
}

/** ms from `t0` to each stage of the given tasks, read back through the REST API. */
async function stageTimes(admin: PallasClient, ids: Set<string>, t0: number): Promise<Record<'sent' | 'started' | 'finished', number[]>> {
  const tasks: Task[] = (await admin.all('listTasks')).filter((t) => ids.has(t.id));
  const at = (k: 'sentAt' | 'startedAt' | 'finishedAt') => tasks.flatMap((t) => (t[k] ? [Date.parse(t[k]!) - t0] : []));
  return { sent: at('sentAt'), started: at('startedAt'), finished: at('finishedAt') };
}
