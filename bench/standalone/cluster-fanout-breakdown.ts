/**
 * Where a cluster fan-out's time goes: three managers on Mosquitto and PostgreSQL behind
 * nginx (testkit's startCluster), N simulated agents, one `vm.create` to every device; then,
 * per task, from the task rows' own times: created → sent (the outbox), sent → started (the
 * device, its first progress stored), started → finished (the result stored), finished →
 * seen on the live stream through nginx (the relay and the stream).
 *
 *   PALLAS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node --import tsx bench/standalone/cluster-fanout-breakdown.ts [devices] [rounds] [cluster|single]
 *
 * `single`: one manager on its defaults (embedded broker, SQLite), the scenario's baseline.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startFleet } from '@pallas/sim';
import type { Task } from '@pallas/protocol';
import { startCluster, startManagerProcess, tempDir } from '@pallas/testkit';
import { absoluteNow, watchTaskOutcomes } from '../lib/task-stream-watcher.js';
import { tasksOnDevices } from '../lib/tasks-on-devices.js';
import { percentile } from '../lib/stats.js';
import { PolledCpu, clusterProcesses, profileNodeArgs } from '../lib/proc.js';

const devices = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 3);
const single = process.argv[4] === 'single';
const dir = existsSync('/dev/shm') ? tempDir('pallas-breakdown-', '/dev/shm') : tempDir('pallas-breakdown-');
const managerArgs = ['--status-interval-sec', '86400', '--keepalive-sec', '60'];
const setup = single
  ? await startManagerProcess({ dataDir: `${dir.path}/manager`, args: managerArgs, database: 'sqlite', nodeArgs: profileNodeArgs() }).then((m) => ({
    url: m.httpUrl, client: () => m.client(), close: () => m.stop(), pids: () => new Map([['bench (fleet + watcher)', [process.pid]], ['managers', [m.pid]]]),
  }))
  : await startCluster({ managers: 3, managerArgs, nodeArgs: profileNodeArgs() }).then((c) => ({
    url: c.url, client: () => c.client(), close: () => c.close(),
    pids: () => new Map([['bench (fleet + watcher)', [process.pid]], ...clusterProcesses(c)]),
  }));
const admin = await setup.client();
const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: devices } });
const devicesLog = tasksOnDevices();
const onDevice = devicesLog.tasks;
// No sim host state files, as in the benchmark's scenarios: the simulator's bookkeeping is not the setups' cost.
const fleet = await startFleet({
  manager: setup.url, token, devices, stateDir: `${dir.path}/fleet`, statusIntervalSec: 86400, hostStateFiles: false, logger: pino({ level: 'error' }),
  onAgent: devicesLog.onAgent,
});
try {
  await fleet.waitOnline(devices, 120_000);
  const ids = fleet.agents.map((a) => a.deviceId!);
  const seen = new Map<string, number>();
  const watcher = await watchTaskOutcomes(setup.url, admin.token!, (o) => { if (o.state === 'succeeded') seen.set(o.taskId, o.at); });
  // CPU of the setup's own processes, not every process of a kind on the machine (other
  // engineers' brokers, managers and database sessions may run beside it).
  let cpu: PolledCpu | undefined;
  for (let r = 0; r <= rounds; r++) {
    if (r === 1) cpu = new PolledCpu(setup.pids);
    await sleep(4000);
    const t0 = absoluteNow();
    const { taskIds } = await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name: `b-${r}`, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
    const answered = absoluteNow() - t0;
    while (taskIds.some((id) => !seen.has(id))) await sleep(50);
    const wanted = new Set(taskIds);
    const rows: Task[] = [];
    for (let offset = 0; rows.length < taskIds.length; offset += 500) {
      const page = await admin.call('listTasks', { query: { limit: 500, offset } });
      rows.push(...page.items.filter((t) => wanted.has(t.id)));
      if (page.items.length === 0) break;
    }
    const ms = (a: string | null, b: string | null) => Date.parse(b!) - Date.parse(a!);
    const col = (f: (x: (typeof rows)[number]) => number) => rows.map(f);
    const line = (name: string, xs: number[]) => console.log(`  ${name.padEnd(28)} p50 ${percentile(xs, 50).toFixed(0).padStart(6)} ms  p99 ${percentile(xs, 99).toFixed(0).padStart(6)} ms  max ${Math.max(...xs).toFixed(0).padStart(6)} ms`);
    console.log(`round ${r}${r === 0 ? ' (warm-up)' : ''}: ${rows.length} tasks`);
    line('request → created', col((x) => Date.parse(x.createdAt) - t0));
    line('request → answered (committed)', [answered]);
    line('created → sent', col((x) => ms(x.createdAt, x.sentAt)));
    line('sent → started stored', col((x) => ms(x.sentAt, x.startedAt)));
    line('started → finished stored', col((x) => ms(x.startedAt, x.finishedAt)));
    line('  sent → on the device', col((x) => onDevice.get(x.id)!.started - Date.parse(x.sentAt!)));
    line('  on the device', col((x) => onDevice.get(x.id)!.finished! - onDevice.get(x.id)!.started));
    line('  result → stored', col((x) => Date.parse(x.finishedAt!) - onDevice.get(x.id)!.finished!));
    line('finished → seen on stream', col((x) => seen.get(x.id)! - Date.parse(x.finishedAt!)));
    line('request → seen (the figure)', col((x) => seen.get(x.id)! - t0));
  }
  await watcher.stop();
  const used = cpu?.stop() ?? new Map<string, number>();
  console.log(`CPU seconds over the ${rounds} measured rounds (and their 4 s pauses):`);
  for (const [kind, sec] of used) console.log(`  ${kind.padEnd(26)} ${sec.toFixed(1)} s`);
} finally {
  await fleet.stop();
  await setup.close();
  dir.cleanup();
}
