/**
 * The fault soak (docs/soak.md): tasks through a cluster of managers on PostgreSQL and
 * Mosquitto behind nginx, with real agents, while packets are dropped, the devices' link is
 * delayed and cut, the broker goes down, and managers and agents are SIGKILLed; REST calls
 * are in flight through all of it. Then every fault stops, the run waits for quiescence, and
 * the tasks are reconciled from the API and from the devices' own sim host state.
 *
 * `npm run soak` (scripts/soak.ts) and test/e2e/soak.test.ts both call `runSoak`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Task } from '@pallas/protocol';
import { createEnrollmentToken, startAgentProcess, startCluster, tempDir, waitFor, type Cluster, type Proc } from '@pallas/testkit';
import { packetLoss } from './packet-loss.js';
import { reconcile, type Request, type SoakCounts } from './reconcile.js';
import { startDelayProxy } from './tcp-proxy.js';

export interface SoakOptions {
  /** Length of the fault phase in minutes. Default 3. */
  minutes?: number;
  /** Real agent processes (sim driver). Default 10. */
  agents?: number;
  /** REST requests that create tasks during the fault phase. Default 40 per minute per 10 agents. */
  tasks?: number;
  /** Managers in the cluster. Default 3. */
  managers?: number;
  /** How long after the faults stop everything must be final and every device back. Default 180 s. */
  settleSec?: number;
  /** Each task's deadline. Default 300 s: a task caught in the faults still has time to finish. */
  taskTimeoutSec?: number;
  /** Share of packets dropped while loss is on. Default 0.2. */
  lossProbability?: number;
  /** Seed of every random choice (faults, targets, timings). Default: random, printed. */
  seed?: number;
  log?: (line: string) => void;
  /** Aborting ends the fault phase at once (Ctrl-C); the run still cleans up. */
  signal?: AbortSignal;
}

export interface SoakReport extends SoakCounts {
  seed: number;
  faults: Record<string, number>;
  /** Whether lost = duplicated = stuck = 0. */
  ok: boolean;
}

/** A small seeded generator (mulberry32), so that a run can be replayed with `--seed`. */
function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, between: (lo: number, hi: number) => lo + next() * (hi - lo), int: (n: number) => Math.floor(next() * n) };
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export async function runSoak(o: SoakOptions = {}): Promise<SoakReport> {
  const minutes = o.minutes ?? 3;
  const agentCount = o.agents ?? 10;
  const taskCount = o.tasks ?? Math.max(10, Math.round(40 * minutes * (agentCount / 10)));
  const managerCount = o.managers ?? 3;
  const settleMs = (o.settleSec ?? 180) * 1000;
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const lossP = o.lossProbability ?? 0.2;
  const rnd = seeded(seed);
  const log = o.log ?? ((line: string) => console.log(line));
  const t0 = Date.now();
  const say = (line: string) => log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const faults: Record<string, number> = {};
  const count = (k: string) => { faults[k] = (faults[k] ?? 0) + 1; };
  say(`soak: ${managerCount} managers, ${agentCount} agents, ${taskCount} task requests over ${minutes} min of faults, seed ${seed}`);

  const dirs = tempDir('pallas-soak-');
  const loss = packetLoss();
  const proxy = await startDelayProxy();
  let cluster: Cluster | undefined;
  const agents: Array<{ proc: Proc; stateDir: string; deviceId: string }> = [];
  try {
    // Devices are told the proxy's URL at enrollment; the managers reach the broker directly.
    cluster = await startCluster({
      managers: managerCount,
      managerArgs: ['--mqtt-public-url', proxy.url, '--keepalive-sec', '5', '--status-interval-sec', '20'],
    });
    const c = cluster;
    proxy.setTarget(c.broker.port);
    say(`cluster up: load balancer ${c.url}, broker ${c.broker.url} (devices through ${proxy.url}), managers ${c.managers.map((m) => m.httpUrl).join(' ')}`);
    const admin = await c.admin();
    const token = await createEnrollmentToken(admin, { maxUses: agentCount });
    const simConfig = join(dirs.path, 'sim.json');
    // Each create takes a little while, so that kills land in the middle of tasks.
    writeFileSync(simConfig, JSON.stringify({ sim: { latencyMs: 300 } }));
    const startAgent = (stateDir: string, withToken: boolean) =>
      startAgentProcess({ managerUrl: c.url, stateDir, ...(withToken ? { token } : {}), args: ['--config', simConfig], env: { PALLAS_LOG_LEVEL: 'warn' } });
    for (let i = 0; i < agentCount; i++) {
      const stateDir = join(dirs.path, `agent-${i}`);
      agents.push({ proc: startAgent(stateDir, true), stateDir, deviceId: '' });
    }
    const onlineCount = async () => (await admin.get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body?.total ?? 0;
    try {
      await waitFor('every agent online', async () => (await onlineCount()) === agentCount, { timeoutMs: 120_000, intervalMs: 500 });
    } catch (err) {
      for (const a of agents) log(`--- ${a.stateDir}:\n${a.proc.output().slice(-2000)}`);
      log(`--- broker:\n${c.broker.output().slice(-3000)}`);
      throw err;
    }
    const devices = (await admin.get<{ items: Array<{ id: string }> }>(`/api/v1/devices?limit=${agentCount}`)).body.items;
    for (const a of agents) {
      a.deviceId = (JSON.parse(readFileSync(join(a.stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
    }
    if (devices.length !== agentCount) throw new Error(`expected ${agentCount} devices, the API lists ${devices.length}`);
    say(`${agentCount} agents enrolled and online`);

    // --- Requests: each names its own VM (the marker), so that whatever the answer, its
    // effect can be found later in the API and on the device.
    const requests: Request[] = [];
    const inFlight = new Set<Promise<void>>();
    const alive = (i: number) => { const m = c.managers[i]!; return m.child.exitCode === null && m.child.signalCode === null; };
    const submit = (via: string, target: string) => {
      const n = requests.length + 1;
      const many = rnd.next() < 0.2 ? 3 : 1;
      const deviceIds = Array.from({ length: many }, () => agents[rnd.int(agents.length)]!.deviceId).filter((d, k, all) => all.indexOf(d) === k);
      const r: Request = { marker: `soak-${n}`, deviceIds, via, outcome: 'unknown' };
      requests.push(r);
      const p = (async () => {
        try {
          const res = await fetch(`${target}/api/v1/tasks`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` },
            body: JSON.stringify({ operation: { kind: 'vm.create', spec: { name: r.marker, vcpus: 1, memoryMB: 64, diskGB: 1 } }, deviceIds, timeoutSec: o.taskTimeoutSec ?? 300 }),
            signal: AbortSignal.timeout(30_000),
          });
          const text = await res.text();
          r.status = res.status;
          if (res.status === 202) {
            r.outcome = 'accepted';
            r.taskIds = (JSON.parse(text) as { taskIds: string[] }).taskIds;
          } else if (res.status >= 400 && res.status < 500) {
            r.outcome = 'refused';
            r.detail = text.slice(0, 200);
          } else {
            r.detail = `HTTP ${res.status}`;
          }
        } catch (err) {
          // fetch says "fetch failed"; the cause says how (ECONNREFUSED: nothing was sent).
          const cause = (err as Error & { cause?: { code?: string } }).cause?.code;
          r.detail = cause ? `${(err as Error).message}: ${cause}` : (err as Error).message;
        }
      })();
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    };
    const submitSomewhere = () => {
      // Half through the load balancer, half straight to a manager (alive or not).
      if (rnd.next() < 0.5) submit('load balancer', c.url);
      else {
        const i = rnd.int(managerCount);
        submit(`manager ${i + 1}${alive(i) ? '' : ' (dead)'}`, c.managers[i]!.httpUrl);
      }
    };

    // --- Faults ---------------------------------------------------------------------
    const faultEnd = Date.now() + minutes * 60_000;
    const running = () => Date.now() < faultEnd && !o.signal?.aborted;
    /** Sleeps, but wakes early when the fault phase ends. */
    const pause = async (ms: number) => {
      const until = Math.min(Date.now() + ms, faultEnd);
      while (Date.now() < until && !o.signal?.aborted) await sleep(Math.min(250, until - Date.now()));
    };
    let lossOn = false;
    const lossPorts = () => [c.broker.port, ...c.managers.filter((_, i) => alive(i)).map((m) => Number(new URL(m.httpUrl).port))];
    const refreshLoss = () => { if (lossOn) loss.set(lossPorts(), lossP); };
    let brokerDown = false;

    const networkFaults = async () => {
      while (running()) {
        await pause(rnd.between(2_000, 6_000));
        if (!running()) break;
        const kind = rnd.int(4);
        const hold = rnd.between(4_000, 12_000);
        if (kind === 0) {
          count('packet loss windows');
          lossOn = true;
          refreshLoss();
          say(`loss ${lossP * 100}% on ports ${loss.ports.join(', ')} for ${(hold / 1000).toFixed(1)} s`);
          await pause(hold);
          lossOn = false;
          loss.clear();
          say('loss off');
        } else if (kind === 1) {
          const ms = Math.round(rnd.between(100, 800));
          count('delay windows');
          proxy.setDelay(ms);
          say(`devices' link delayed ${ms} ms each way for ${(hold / 1000).toFixed(1)} s`);
          await pause(hold);
          proxy.setDelay(0);
          say('delay off');
        } else if (kind === 2) {
          const out = rnd.between(2_000, 8_000);
          count('device link outages');
          await proxy.down();
          say(`devices' link down for ${(out / 1000).toFixed(1)} s`);
          await pause(out);
          await proxy.up();
          say('devices\' link up');
        } else {
          const out = rnd.between(1_000, 5_000);
          count('broker outages');
          brokerDown = true;
          await c.broker.stop();
          say(`broker stopped for ${(out / 1000).toFixed(1)} s`);
          await pause(out);
          await c.broker.restart();
          brokerDown = false;
          say('broker started');
        }
      }
    };

    const managerKills = async () => {
      while (running()) {
        await pause(rnd.between(8_000, 20_000));
        if (!running()) break;
        const i = rnd.int(managerCount);
        // Requests in flight to the manager about to die: they may or may not create their task.
        for (let k = 0; k < 3; k++) submit(`manager ${i + 1} (being killed)`, c.managers[i]!.httpUrl);
        await sleep(rnd.between(0, 40));
        await c.kill(i);
        count('manager SIGKILLs');
        const down = rnd.between(2_000, 6_000);
        say(`manager ${i + 1} SIGKILLed with 3 requests in flight; back in ${(down / 1000).toFixed(1)} s`);
        await sleep(down);
        await restartManager(i);
      }
    };
    const restartManager = async (i: number) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await c.restart(i);
          refreshLoss();
          say(`manager ${i + 1} restarted on ${c.managers[i]!.httpUrl}`);
          return;
        } catch (err) {
          if (attempt >= 5) throw err;
          say(`manager ${i + 1} restart failed (${(err as Error).message.split('\n')[0]}); again`);
        }
      }
    };

    const agentKills = async () => {
      while (running()) {
        await pause(rnd.between(3_000, 10_000));
        if (!running()) break;
        const a = agents[rnd.int(agents.length)]!;
        await a.proc.kill();
        count('agent SIGKILLs');
        const down = rnd.between(500, 4_000);
        say(`agent ${a.deviceId.slice(0, 8)} SIGKILLed; back in ${(down / 1000).toFixed(1)} s`);
        await sleep(down);
        a.proc = startAgent(a.stateDir, false);
      }
    };

    const submitter = async () => {
      const every = (minutes * 60_000) / taskCount;
      while (running()) {
        submitSomewhere();
        await pause(every * rnd.between(0.5, 1.5));
      }
    };

    say('faults on');
    await Promise.all([networkFaults(), managerKills(), agentKills(), submitter()]);

    // --- Quiescence: every fault off, every process back, then wait ----------------------
    say('faults off: waiting for the requests in flight, every process and every device');
    loss.clear();
    proxy.setDelay(0);
    await proxy.up();
    if (brokerDown) await c.broker.restart();
    for (let i = 0; i < managerCount; i++) if (!alive(i)) await restartManager(i);
    // An agent that stopped by itself (not killed by the soak) is a finding: say why, and start it again.
    for (const a of agents) {
      if (a.proc.child.exitCode === null && a.proc.child.signalCode === null) continue;
      say(`agent ${a.deviceId.slice(0, 8)} had exited by itself (${a.proc.child.exitCode ?? a.proc.child.signalCode}): ${a.proc.output().trim().split('\n').slice(-2).join(' / ').slice(0, 400)}`);
      a.proc = startAgent(a.stateDir, false);
    }
    await Promise.allSettled([...inFlight]);
    const settleStart = Date.now();
    const markerTasks = async (): Promise<Task[]> => {
      const client = await c.client();
      return (await client.all('listTasks')).filter((t) => t.operation.kind === 'vm.create' && t.operation.spec.name.startsWith('soak-'));
    };
    let tasks: Task[] = [];
    let settled = false;
    while (Date.now() - settleStart < settleMs) {
      try {
        tasks = await markerTasks();
        const online = await onlineCount();
        if (online === agentCount && tasks.every((t) => FINAL.has(t.state))) {
          settled = true;
          break;
        }
      } catch (err) {
        say(`settle check failed: ${(err as Error).message}`);
      }
      await sleep(1_000);
    }
    tasks = await markerTasks();
    say(settled ? `quiescent after ${((Date.now() - settleStart) / 1000).toFixed(1)} s` : `not quiescent within ${settleMs / 1000} s`);
    const online = await onlineCount();
    if (online !== agentCount) say(`only ${online} of ${agentCount} devices online`);

    const counts = reconcile(requests, tasks, agents.map((a) => ({ deviceId: a.deviceId, stateDir: a.stateDir })));
    const report: SoakReport = { ...counts, seed, faults, ok: counts.lost === 0 && counts.duplicated === 0 && counts.stuck === 0 && online === agentCount };
    if (online !== agentCount) report.problems.push(`${agentCount - online} devices not back online within ${settleMs / 1000} s`);
    return report;
  } finally {
    loss.clear();
    await Promise.all(agents.map((a) => a.proc.kill()));
    await cluster?.close().catch((err: Error) => log(`cluster close: ${err.message}`));
    await proxy.close();
    dirs.cleanup();
  }
}

/** The counts as `npm run soak` prints them. */
export function printSoakReport(r: SoakReport, log: (line: string) => void = console.log): void {
  const failed = Object.entries(r.failed).map(([reason, n]) => `${n} ${reason}`).join(', ');
  log('');
  log(`soak result (seed ${r.seed}; replay the same faults with --seed ${r.seed})`);
  log(`  faults:      ${Object.entries(r.faults).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}`);
  const why = Object.entries(r.requests.unknownWhy).map(([k, n]) => `${n} ${k}`).join(', ');
  log(`  requests:    ${r.requests.sent} sent, ${r.requests.accepted} accepted, ${r.requests.refused} refused, ${r.requests.unknown} without an answer${why ? ` (${why})` : ''}; ${r.requests.unknownThatCreated} not accepted but created their tasks`);
  log(`  submitted:   ${r.submitted}`);
  log(`  succeeded:   ${r.succeeded}`);
  log(`  failed:      ${Object.values(r.failed).reduce((a, b) => a + b, 0)}${failed ? ` (${failed})` : ''}`);
  log(`  stuck:       ${r.stuck}`);
  log(`  lost:        ${r.lost}`);
  log(`  duplicated:  ${r.duplicated}`);
  for (const p of r.problems) log(`  - ${p}`);
  log(r.ok ? 'OK: 0 lost, 0 duplicated, 0 stuck' : 'FAILED: see above');
}
