/**
 * Scenario "tasks": one task fanned out to N simulated devices (`POST /api/v1/tasks` with every
 * device id), timed from the request to each task's `succeeded` as the live stream reports it,
 * i.e. what an operator watching the console sees. The devices are real agents (sim driver,
 * journal on disk, fsync and all) in this process; the manager is its own process on SQLite.
 * Baseline: the same fan-out as bare MQTT request/reply through Mosquitto, which is the floor
 * that any broker round trip sets.
 */
import { join } from 'node:path';
import { startFleet } from '@pallas/sim';
import type { Task } from '@pallas/protocol';
import { createEnrollmentToken, startManagerProcess, tempDir, type Api } from '@pallas/testkit';
import { fanOutRoundTrip, mosquittoAvailable, MOSQUITTO_URL } from '../lib/mosquitto.js';
import { metricValue } from '../lib/proc.js';
import { absoluteNow, watchTaskOutcomes } from '../lib/task-stream-watcher.js';
import { percentile, type Row } from '../lib/stats.js';

export interface TasksOptions {
  devices: number;
}

export async function runTasks(o: TasksOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = tempDir('pallas-bench-tasks-');
  const manager = await startManagerProcess({
    dataDir: join(dir.path, 'manager'),
    args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
    ...(process.env.PALLAS_BENCH_PROFILE ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env.PALLAS_BENCH_PROFILE}`] } : {}),
  });
  const rows: Row[] = [];
  const raw: Record<string, unknown> = { devices: o.devices };
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  let watcher: Awaited<ReturnType<typeof watchTaskOutcomes>> | undefined;
  try {
    const admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: o.devices });
    fleet = await startFleet({ manager: manager.httpUrl, token, devices: o.devices, stateDir: join(dir.path, 'fleet'), statusIntervalSec: 86400, hostStateFiles: false });
    await fleet.waitOnline(o.devices, 180_000);
    const ids = fleet.agents.map((a) => a.deviceId!);

    // Follow the live stream, as the console does (on a thread of its own: see the watcher).
    const finished = new Map<string, number>();
    const failed: string[] = [];
    let t0 = 0;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => { allDone = resolve; });
    watcher = await watchTaskOutcomes(manager.httpUrl, admin.token!, (o) => {
      if (finished.has(o.taskId)) return;
      if (o.state === 'succeeded') finished.set(o.taskId, o.at - t0);
      else {
        failed.push(`${o.taskId}: ${o.state} ${o.message ?? ''}`);
        finished.set(o.taskId, Number.NaN);
      }
      if (finished.size === ids.length) allDone();
    });

    // Warm-up on a handful of devices, so the first figure is not the JIT's.
    const warm = await admin.post('/api/v1/tasks', { operation: { kind: 'vm.create', spec: { name: 'warm-up', vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids.slice(0, 20) });
    if (warm.status !== 202) throw new Error(`warm-up: ${warm.status} ${JSON.stringify(warm.body)}`);
    for (const id of warm.body.taskIds as string[]) finished.set(id, 0);
    await new Promise((r) => setTimeout(r, 2000));
    finished.clear();

    // CPU spent by each side during the fan-out: the manager's from its own metrics, the
    // simulated fleet's (this process: 2,000 agents) from cpuUsage.
    const managerCpu = async () => metricValue(await (await fetch(`${manager.httpUrl}/metrics`)).text(), 'pallas_process_cpu_seconds_total');
    const managerCpu0 = await managerCpu();
    const fleetCpu0 = process.cpuUsage();
    t0 = absoluteNow();
    const fan = await admin.post('/api/v1/tasks', { operation: { kind: 'vm.create', spec: { name: 'fan-out', vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids });
    const accepted = absoluteNow() - t0;
    if (fan.status !== 202) throw new Error(`fan-out: ${fan.status} ${JSON.stringify(fan.body)}`);
    const timeout = setTimeout(allDone, 60_000);
    await done;
    clearTimeout(timeout);
    const managerCpuMs = (await managerCpu() - managerCpu0) * 1000;
    const fleetUsage = process.cpuUsage(fleetCpu0);
    const fleetCpuMs = (fleetUsage.user + fleetUsage.system) / 1000;
    const latencies = [...finished.values()].filter((v) => Number.isFinite(v));
    if (failed.length > 0) throw new Error(`${failed.length} tasks did not succeed, e.g. ${failed.slice(0, 3).join('; ')}`);
    if (latencies.length < ids.length) throw new Error(`only ${latencies.length} of ${ids.length} tasks succeeded within 60 s`);

    let floor: number[] | undefined;
    if (await mosquittoAvailable()) floor = await fanOutRoundTrip(MOSQUITTO_URL, o.devices, `pallas-bench-${process.pid}`);
    const base = (p: number) => (floor ? { baseline: { name: 'Mosquitto request/reply', value: percentile(floor, p) } } : {});
    rows.push(
      { metric: 'POST /tasks accepted', value: accepted, unit: 'ms' },
      { metric: 'created → succeeded p50', value: percentile(latencies, 50), unit: 'ms', ...base(50) },
      { metric: 'created → succeeded p99', value: percentile(latencies, 99), unit: 'ms', target: '< 2000 ms', ...base(99) },
      { metric: 'tasks/s through the engine', value: ids.length / (Math.max(...latencies) / 1000), unit: '/s' },
      { metric: 'manager CPU per task', value: managerCpuMs / ids.length, unit: 'ms' },
      { metric: 'simulated fleet CPU per task', value: fleetCpuMs / ids.length, unit: 'ms' },
    );
    // Where the time went: each stage's p50/p99 from the manager's own timestamps on the tasks
    // (sent: marked sent by the outbox; started: the agent's first progress stored; finished:
    // the result stored), then seen on the live stream.
    const stages = await stageTimes(admin, new Set(fan.body.taskIds as string[]), t0);
    stages.seen = latencies;
    console.log('\nstages, ms after the request:');
    for (const [stage, values] of Object.entries(stages)) console.log(`  ${stage.padEnd(9)} p1 ${Math.round(percentile(values, 1))}  p50 ${Math.round(percentile(values, 50))}  p99 ${Math.round(percentile(values, 99))}`);
    raw.stages = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, { p50: percentile(v, 50), p99: percentile(v, 99) }]));
    raw.fanOut = { acceptedMs: accepted, managerCpuMs, fleetCpuMs, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), floor: floor && { p50: percentile(floor, 50), p99: percentile(floor, 99) } };
    return { rows, raw };
  } finally {
    await watcher?.stop();
    await fleet?.stop();
    await manager.close();
    dir.cleanup();
  }
}

/** ms from `t0` to each stage of the given tasks, read back through the REST API. */
async function stageTimes(admin: Api, ids: Set<string>, t0: number): Promise<Record<string, number[]>> {
  const tasks: Task[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await admin.get<{ items: Task[] }>(`/api/v1/tasks?limit=1000&offset=${offset}`);
    tasks.push(...page.body.items.filter((t) => ids.has(t.id)));
    if (page.body.items.length < 1000) break;
  }
  const at = (k: 'sentAt' | 'startedAt' | 'finishedAt') => tasks.flatMap((t) => (t[k] ? [Date.parse(t[k]!) - t0] : []));
  return { sent: at('sentAt'), started: at('startedAt'), finished: at('finishedAt') };
}
