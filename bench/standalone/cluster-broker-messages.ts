/**
 * How many MQTT messages a cluster fan-out costs the broker, per task: three managers on
 * Mosquitto and PostgreSQL behind nginx (testkit's startCluster, as the `cluster` scenario),
 * N simulated agents, one `vm.create` to every device per round. For each round, from
 * Mosquitto's own `$SYS/broker/...` counters (every packet it received and sent, PUBLISHes
 * apart, bytes), read on the 10 s ticks before and after the round and its settling time, less
 * the idle rate (keepalives) measured first; and, from an observer subscribed to every device
 * topic, the PUBLISHes the broker received per channel. Also Mosquitto's CPU per round.
 *
 *   PALLAS_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node --import tsx bench/standalone/cluster-broker-messages.ts [devices] [rounds]
 *
 * The observer is the dynamic-security admin, given read access to `$SYS/#` and `pallas/#`
 * for the run (a role added over the plugin's control topic). Its own deliveries (one per
 * PUBLISH it observes, QoS 0) are taken out of the `sent` counts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { startFleet } from '@pallas/sim';
import { startCluster, type Cluster } from '@pallas/testkit';
import { absoluteNow, watchTaskOutcomes } from '../lib/task-stream-watcher.js';
import { profileNodeArgs } from '../lib/proc.js';

const devices = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 2);
const SETTLE_MS = 5000;

/**
 * CPU seconds used so far by this cluster's own processes, by what they are: its managers,
 * its Mosquitto, its nginx (master and workers), the PostgreSQL backends serving its database,
 * and this process (the fleet and the watcher). Not every process of a kind on the machine:
 * other engineers' brokers and managers run beside it.
 */
function cpuByKind(cluster: Cluster): Map<string, number> {
  const out = new Map<string, number>();
  const add = (kind: string, pid: number) => {
    try {
      out.set(kind, (out.get(kind) ?? 0) + cpuSeconds(pid));
    } catch {
      // gone meanwhile
    }
  };
  add('bench (fleet + watcher)', process.pid);
  for (const m of cluster.managers) add('managers', m.pid);
  add('mosquitto', cluster.broker.pid());
  const nginx = cluster.nginx.proc.pid;
  add('nginx', nginx);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(nginx)) add('nginx', Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  const backends = execFileSync('psql', [cluster.databaseUrl, '-Atc', 'select pid from pg_stat_activity where datname = current_database()'], { encoding: 'utf8' });
  for (const pid of backends.split('\n').filter(Boolean)) add('postgresql (its backends)', Number(pid));
  return out;
}

/** Times the process gave up the CPU to wait (epoll_wait with nothing to do) and was preempted. */
function switches(pid: number): { voluntary: number; involuntary: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const n = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { voluntary: n('voluntary_ctxt_switches'), involuntary: n('nonvoluntary_ctxt_switches') };
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const cluster = await startCluster({ managers: 3, managerArgs: ['--status-interval-sec', '86400', '--keepalive-sec', '60'], nodeArgs: profileNodeArgs() });
const fleetDir = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
const stateDir = `${fleetDir}/pallas-broker-count-${process.pid}`;
let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
const observer = mqtt.connect(cluster.broker.url, { username: cluster.broker.admin.username, password: cluster.broker.admin.password, clientId: `bench-observer-${process.pid}`, protocolVersion: 5, clean: true, log: () => {} });
try {
  await new Promise<void>((resolve, reject) => { observer.once('connect', () => resolve()); observer.once('error', reject); });
  // Read access for the observer: a role over the plugin's control topic, as an operator would
  // (its answer is not waited for: the subscriptions below show whether it took).
  const acl = (acltype: string, topic: string) => ({ command: 'addRoleACL', rolename: 'bench-observer', acltype, topic, allow: true });
  await observer.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify({ commands: [
    { command: 'createRole', rolename: 'bench-observer' },
    acl('subscribePattern', '$SYS/#'), acl('publishClientReceive', '$SYS/#'),
    acl('subscribePattern', 'pallas/#'), acl('publishClientReceive', 'pallas/#'),
    { command: 'addClientRole', username: cluster.broker.admin.username, rolename: 'bench-observer' },
  ] }), { qos: 1 });
  await sleep(1000);

  const sys = new Map<string, number>();
  const byChannel = new Map<string, number>();
  let observed = 0;
  let tick: () => void = () => {};
  observer.on('message', (topic, payload) => {
    if (topic.startsWith('$SYS/')) {
      sys.set(topic.slice('$SYS/broker/'.length), Number(payload.toString()));
      if (topic === '$SYS/broker/uptime') setTimeout(() => tick(), 300);
      return;
    }
    const m = /^pallas\/v1\/d\/[^/]+\/(.+)$/.exec(topic);
    if (!m) return;
    observed++;
    byChannel.set(m[1]!, (byChannel.get(m[1]!) ?? 0) + 1);
  });
  await observer.subscribeAsync('$SYS/broker/#', { qos: 0 });
  await observer.subscribeAsync('pallas/#', { qos: 0 });
  const KEYS = ['messages/received', 'messages/sent', 'publish/messages/received', 'publish/messages/sent', 'bytes/received', 'bytes/sent'];
  /** The counters as of the next $SYS tick, with the observer's own deliveries so far. */
  const nextTick = () => new Promise<{ at: number; v: Record<string, number>; observed: number; channels: Map<string, number>; cpu: number; cs: { voluntary: number; involuntary: number } }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no $SYS tick within 25 s: is the observer allowed to read $SYS?')), 25_000);
    tick = () => {
      clearTimeout(timer);
      tick = () => {};
      resolve({ at: Date.now(), v: Object.fromEntries(KEYS.map((k) => [k, sys.get(k) ?? Number.NaN])), observed, channels: new Map(byChannel), cpu: cpuSeconds(cluster.broker.pid()), cs: switches(cluster.broker.pid()) });
    };
  });

  const admin = await cluster.client();
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: devices } });
  fleet = await startFleet({ manager: cluster.url, token, devices, stateDir, statusIntervalSec: 86400, hostStateFiles: true, logger: pino({ level: 'error' }) });
  await fleet.waitOnline(devices, 180_000);
  const ids = fleet.agents.map((a) => a.deviceId!);
  const seen = new Set<string>();
  const watcher = await watchTaskOutcomes(cluster.url, admin.token!, (o) => { if (o.state === 'succeeded') seen.add(o.taskId); });
  await sleep(SETTLE_MS);
  // Idle: keepalives only.
  const i0 = await nextTick();
  const i1 = await nextTick();
  const idlePerMs = Object.fromEntries(KEYS.map((k) => [k, (i1.v[k]! - i0.v[k]!) / (i1.at - i0.at)]));
  console.log(`idle over ${i1.at - i0.at} ms: ${KEYS.map((k) => `${k} ${(i1.v[k]! - i0.v[k]!)}`).join(', ')}; observer saw ${i1.observed - i0.observed}`);
  let cpu0 = cpuByKind(cluster);
  for (let r = 0; r <= rounds; r++) {
    const a = await nextTick();
    if (r === 1) cpu0 = cpuByKind(cluster);
    const t0 = absoluteNow();
    const { taskIds } = await admin.call('createBulkTask', { body: { operation: { kind: 'vm.create', spec: { name: `count-${r}`, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds: ids } });
    while (taskIds.some((id) => !seen.has(id))) await sleep(50);
    const doneMs = absoluteNow() - t0;
    await sleep(SETTLE_MS); // the agents' status reports 3 s after their task
    const b = await nextTick();
    const n = taskIds.length;
    const ms = b.at - a.at;
    console.log(`round ${r}${r === 0 ? ' (warm-up)' : ''}: ${n} tasks, all succeeded after ${doneMs.toFixed(0)} ms; counted over ${ms} ms (idle rate taken out); Mosquitto CPU ${(b.cpu - a.cpu).toFixed(2)} s = ${(1000 * (b.cpu - a.cpu) / n).toFixed(2)} ms per task; its context switches ${b.cs.voluntary - a.cs.voluntary} voluntary (woken from epoll_wait), ${b.cs.involuntary - a.cs.involuntary} preempted`);
    const obs = b.observed - a.observed;
    for (const k of KEYS) {
      let d = b.v[k]! - a.v[k]! - idlePerMs[k]! * ms;
      // The observer's deliveries: one PUBLISH each, on the `sent` side.
      if (k === 'messages/sent' || k === 'publish/messages/sent') d -= obs;
      console.log(`  ${k.padEnd(28)} ${d.toFixed(0).padStart(9)}  = ${(d / n).toFixed(2)} per task`);
    }
    console.log(`  PUBLISHes received by the broker, per channel (observer):`);
    for (const [ch, c] of b.channels) {
      const d = c - (a.channels.get(ch) ?? 0);
      if (d > 0) console.log(`    ${ch.padEnd(16)} ${String(d).padStart(7)}  = ${(d / n).toFixed(2)} per task`);
    }
  }
  const cpu1 = cpuByKind(cluster);
  console.log(`CPU seconds over the ${rounds} measured rounds (each with its settling time and the wait for $SYS ticks):`);
  for (const [kind, sec] of cpu1) if (kind !== 'other') console.log(`  ${kind.padEnd(26)} ${(sec - (cpu0.get(kind) ?? 0)).toFixed(1)} s`);
  await watcher.stop();
} finally {
  observer.end(true);
  await fleet?.stop();
  await cluster.close();
}
