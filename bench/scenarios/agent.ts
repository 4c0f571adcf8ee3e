/**
 * Scenario "agent": the footprint of one device's agent (issue #20, point 5). A real manager
 * process; beside it, in the same run, a bare `node` process doing nothing (the baseline every
 * memory figure is divided by) and a bare `node` that fetches the manager's `/healthz` (the
 * baseline of the start time); then `pallas-agent supervise` on the sim driver, as devices run
 * it: two Node processes, the supervisor and the agent it spawns.
 *
 * Per round (the first one enrolls, the others restart on the enrolled state dir): spawn to
 * the manager showing the device online, each process's peak RSS since its start (VmHWM), and
 * its memory once idle (after `settleSeconds`): RSS, PSS and USS from /proc/<pid>/smaps_rollup.
 * Then, per round, a `downloadMiB` patch artifact (sparse on this side, so quick to make) that
 * a `device.patch` task makes the agent download over HTTPS: each process's peak RSS while it
 * downloads (VmHWM reset before; sampled every 20 ms where the kernel refuses the reset).
 *
 * Every ratio is computed per round against the baseline measured in that round; a ratio that
 * is not positive, or whose spread over the rounds (max − min) exceeds its median, fails the
 * scenario's sanity check instead of being printed as a result.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { uploadFile } from '@pallas/client/node';
import type { PallasClient } from '@pallas/client';
import { BIN, REPO_ROOT, createEnrollmentToken, patchFile, startManagerProcess, startProgram, tempDir, waitFor, type Proc } from '@pallas/testkit';
import { childPids, cpuSeconds, memoryOf, peakRssBytes, resetPeakRss, rssBytes } from '../lib/proc.js';
import { percentile, type Row } from '../lib/stats.js';

export interface AgentScenarioOptions {
  /** Start/idle rounds, and as many downloads. At least 2 (a spread needs two). */
  rounds: number;
  /** Size of the artifact each download round fetches. */
  downloadMiB: number;
  /** How long a started agent is left alone before its idle memory is read. */
  settleSeconds: number;
  /**
   * Run the agent as self-update installs it: the single-file bundle (built here into the
   * temp dir), named by `current.json` in the state dir, under the installed supervisor.
   * Default: the installed agent (`bin/pallas-agent.js`, hundreds of modules).
   */
  bundle?: boolean;
}

const MiB = 1024 * 1024;
type Mem = { rss: number; pss: number; uss: number };
const median = (xs: number[]): number => percentile(xs, 50);

/** Memory of a process, RSS alone where smaps_rollup cannot be read. */
function memOf(pid: number): Mem {
  return memoryOf(pid) ?? { rss: rssBytes(pid), pss: Number.NaN, uss: Number.NaN };
}

/** Median of `n` readings `gapMs` apart, field by field. */
async function settledMem(pid: number, n = 5, gapMs = 300): Promise<Mem> {
  const xs: Mem[] = [];
  for (let i = 0; i < n; i++) {
    if (i) await sleep(gapMs);
    xs.push(memOf(pid));
  }
  return { rss: median(xs.map((m) => m.rss)), pss: median(xs.map((m) => m.pss)), uss: median(xs.map((m) => m.uss)) };
}

/**
 * Peak RSS of processes over a phase: VmHWM reset at its start where the kernel allows it, and
 * RSS sampled every 20 ms as well (the higher of the two counts).
 */
function peakWatch(pids: number[]): { stop(): number[] } {
  const reset = pids.map((p) => resetPeakRss(p));
  const sampled = pids.map((p) => rssBytes(p));
  const timer = setInterval(() => pids.forEach((p, i) => {
    try {
      sampled[i] = Math.max(sampled[i]!, rssBytes(p));
    } catch {
      /* gone */
    }
  }), 20);
  return {
    stop() {
      clearInterval(timer);
      return pids.map((p, i) => Math.max(sampled[i]!, reset[i] ? peakRssBytes(p) : 0));
    },
  };
}


/** A bare node that does nothing: the baseline of every memory figure. */
function startIdleNode(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
}

/** Spawn of a bare node to its first answer from the manager (`GET /healthz`), in ms. */
async function bareNodeAnswered(url: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', 'fetch(process.argv[1]).then((r) => r.text()).then(() => process.stdout.write("ok\\n"))', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`bare node fetch exited ${code}`)));
  });
  const ms = performance.now() - t0;
  child.kill();
  return ms;
}

/**
 * A row from per-round values and the same rounds' baselines: value and baseline are medians
 * in `unit`; the check is on the per-round ratios.
 */
function ratioRow(metric: string, values: number[], baselines: number[], baseName: string, scale: number, unit: string, target?: string): Row {
  const ratios = values.map((v, i) => v / baselines[i]!);
  const r = median(ratios);
  const spread = Math.max(...ratios) - Math.min(...ratios);
  let failed: string | undefined;
  if (ratios.length < 2) failed = `${ratios.length} round(s): a spread needs at least 2`;
  else if (!ratios.every((x) => Number.isFinite(x) && x > 0)) failed = `ratio not positive in a round: ${ratios.map((x) => x.toFixed(2)).join(', ')}`;
  else if (spread > r) failed = `ratio spread ${spread.toFixed(2)} over ${ratios.length} rounds exceeds the ratio ${r.toFixed(2)}`;
  return {
    metric, value: median(values) / scale, unit, spread: (Math.max(...values) - Math.min(...values)) / scale,
    baseline: { name: baseName, value: median(baselines) / scale },
    ...(target ? { target } : {}),
    ...(failed ? { failed } : {}),
  };
}

/** A row of per-round differences (ms) that must be positive and steadier than themselves. */
function diffRow(metric: string, values: number[], target?: string): Row {
  const v = median(values);
  const spread = Math.max(...values) - Math.min(...values);
  let failed: string | undefined;
  if (values.length < 2) failed = `${values.length} round(s): a spread needs at least 2`;
  else if (!values.every((x) => Number.isFinite(x) && x > 0)) failed = `not positive in a round: ${values.map((x) => x.toFixed(0)).join(', ')}`;
  else if (spread > v) failed = `spread ${spread.toFixed(0)} ms over ${values.length} rounds exceeds the value ${v.toFixed(0)} ms`;
  return { metric, value: v, unit: 'ms', spread, ...(target ? { target } : {}), ...(failed ? { failed } : {}) };
}

/** Polls `probe` every `intervalMs` until it returns a value; unlike waitFor, an exception ends the wait at once. */
async function until<T>(what: string, probe: () => Promise<T | false | undefined> | T | false | undefined, timeoutMs: number, intervalMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function presence(client: PallasClient, id: string): Promise<string | undefined> {
  try {
    return (await client.call('getDevice', { params: { id } })).presence;
  } catch {
    return undefined;
  }
}

export async function runAgent(o: AgentScenarioOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  if (o.rounds < 2) throw new Error('the agent scenario needs --rounds 2 or more (a spread needs two)');
  const dir = tempDir('pallas-bench-agent-');
  const stateDir = join(dir.path, 'agent');
  const manager = await startManagerProcess({ dataDir: join(dir.path, 'manager'), args: ['--log-level', 'warn'] });
  const bare = startIdleNode();
  let supervisor: Proc | undefined;
  const raw: Record<string, unknown> = { ...o, smapsRollup: memoryOf(process.pid) !== undefined };
  try {
    if (o.bundle) {
      const file = join(dir.path, 'pallas-agent.mjs');
      const built = spawnSync(process.execPath, [join(REPO_ROOT, 'packages/agent/scripts/bundle.mjs'), '--outfile', file], { encoding: 'utf8' });
      const version = /\(pallas-agent (\S+)\)/.exec(built.stdout)?.[1];
      if (built.status !== 0 || !version) throw new Error(`bundling the agent failed: ${built.stderr}`);
      mkdirSync(join(stateDir, 'agent'), { recursive: true, mode: 0o700 });
      writeFileSync(join(stateDir, 'agent', 'current.json'), JSON.stringify({ version, path: file, since: new Date().toISOString() }), { mode: 0o600 });
      raw.agentEntry = file;
    }
    const client = await manager.client();
    const token = await createEnrollmentToken(await manager.admin(), { maxUses: 1 });
    const args = ['supervise', '--manager', manager.httpsUrl, '--ca', manager.caFile, '--token', token, '--state-dir', stateDir, '--driver', 'sim', '--log-level', 'info'];
    const round = {
      bare: [] as Mem[], supervisor: [] as Mem[], agent: [] as Mem[], supervisorStartPeak: [] as number[], agentStartPeak: [] as number[], bareAtStart: [] as number[],
      onlineMs: [] as number[], answeredMs: [] as number[],
    };
    let deviceId: string | undefined;
    let agentPid = 0;

    for (let r = 0; r < o.rounds; r++) {
      round.answeredMs.push(await bareNodeAnswered(`${manager.httpUrl}/healthz`));
      const t0 = performance.now();
      supervisor = startProgram(process.execPath, [BIN.agent, ...args], { PALLAS_LOG_LEVEL: 'info' });
      const sup = supervisor;
      deviceId = await until('the device to show online', async () => {
        if (sup.child.exitCode !== null) throw new Error(`the supervisor exited:\n${sup.output()}`);
        const devFile = join(stateDir, 'device.json');
        const id = deviceId ?? (existsSync(devFile) ? (JSON.parse(readFileSync(devFile, 'utf8')) as { deviceId: string }).deviceId : undefined);
        return id !== undefined && (await presence(client, id)) === 'online' && id;
      }, 60_000, 10);
      round.onlineMs.push(performance.now() - t0);
      await sleep(o.settleSeconds * 1000);
      const [child, ...more] = childPids(sup.pid);
      if (!child || more.length) throw new Error(`the supervisor should run one agent, it runs ${[child, ...more].join(', ')}`);
      agentPid = child;
      round.supervisorStartPeak.push(peakRssBytes(sup.pid));
      round.agentStartPeak.push(peakRssBytes(agentPid));
      const [b, s, a] = await Promise.all([settledMem(bare.pid!), settledMem(sup.pid), settledMem(agentPid)]);
      round.bare.push(b);
      round.supervisor.push(s);
      round.agent.push(a);
      round.bareAtStart.push(b.rss);
      if (r < o.rounds - 1) {
        await supervisor.stop(15_000);
        await waitFor('the device to show offline', async () => (await presence(client, deviceId!)) === 'offline', { timeoutMs: 30_000, intervalMs: 50 });
      }
    }
    raw.rounds = round;

    // Downloads, with the last round's agent: one fresh artifact each round (another version,
    // so another hash: nothing is reused from the agent's download folder).
    const dl = { agentPeak: [] as number[], supervisorPeak: [] as number[], bare: [] as number[], seconds: [] as number[], applyPeak: [] as number[], agentCpuSeconds: [] as number[] };
    const size = o.downloadMiB * MiB;
    for (let r = 0; r < o.rounds; r++) {
      const file = join(dir.path, `patch-${r}.bin`);
      const head = patchFile(`bench-${r}`);
      const fd = openSync(file, 'w');
      writeSync(fd, head);
      ftruncateSync(fd, size); // the rest is a hole: zeros, after the tar's end-of-archive blocks
      closeSync(fd);
      const artifact = await uploadFile(client, file, { kind: 'patch', name: 'bench-agent-footprint', version: `bench-${r}` });
      rmSync(file);
      const logFrom = supervisor!.output().length;
      const watch = peakWatch([supervisor!.pid, agentPid]);
      const t0 = performance.now();
      const cpu0 = cpuSeconds(agentPid);
      const task = await client.call('patchDeviceHost', { params: { id: deviceId! }, body: { artifactId: artifact.id } });
      await until('the agent to download the artifact', () => {
        if (supervisor!.output().indexOf('artifact downloaded and verified', logFrom) >= 0) return true;
        if (supervisor!.child.exitCode !== null) throw new Error(`the supervisor exited:\n${supervisor!.output().slice(logFrom)}`);
        return false;
      }, 600_000, 20);
      dl.seconds.push((performance.now() - t0) / 1000);
      dl.agentCpuSeconds.push(cpuSeconds(agentPid) - cpu0);
      const [supPeak, agentPeak] = watch.stop();
      dl.supervisorPeak.push(supPeak!);
      dl.agentPeak.push(agentPeak!);
      dl.bare.push(rssBytes(bare.pid!));
      // The sim then reads the patch through (the driver's work, not the download's).
      const apply = peakWatch([agentPid]);
      const done = await waitFor('the patch task to end', async () => {
        const t = await client.call('getTask', { params: { id: task.id } });
        return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
      }, { timeoutMs: 600_000, intervalMs: 100 });
      dl.applyPeak.push(apply.stop()[0]!);
      if (done.state !== 'succeeded') throw new Error(`the patch task ended ${done.state}: ${JSON.stringify(done.error)}`);
      await client.call('deleteArtifact', { params: { id: artifact.id } });
      rmSync(join(stateDir, 'downloads'), { recursive: true, force: true });
    }
    raw.downloads = dl;

    const bareRss = round.bare.map((m) => m.rss);
    const bareUss = round.bare.map((m) => m.uss);
    const barePss = round.bare.map((m) => m.pss);
    const rows: Row[] = [
      ratioRow('supervisor idle RSS', round.supervisor.map((m) => m.rss), bareRss, 'bare node', MiB, 'MiB', '≤ 1.2×'),
      ratioRow('agent idle RSS', round.agent.map((m) => m.rss), bareRss, 'bare node', MiB, 'MiB', '≤ 1.5×'),
    ];
    if (raw.smapsRollup) {
      rows.push(
        ratioRow('supervisor idle USS (private)', round.supervisor.map((m) => m.uss), bareUss, 'bare node', MiB, 'MiB'),
        ratioRow('agent idle USS (private)', round.agent.map((m) => m.uss), bareUss, 'bare node', MiB, 'MiB'),
        ratioRow('supervisor idle PSS', round.supervisor.map((m) => m.pss), barePss, 'bare node', MiB, 'MiB'),
        ratioRow('agent idle PSS', round.agent.map((m) => m.pss), barePss, 'bare node', MiB, 'MiB'),
      );
    }
    rows.push(
      ratioRow('supervisor peak RSS from start', round.supervisorStartPeak, bareRss, 'bare node idle', MiB, 'MiB'),
      ratioRow('agent peak RSS from start (round 1 enrolls)', round.agentStartPeak, bareRss, 'bare node idle', MiB, 'MiB'),
      ratioRow(`agent peak RSS downloading ${o.downloadMiB} MiB`, dl.agentPeak, dl.bare, 'bare node idle', MiB, 'MiB', '≤ 2×'),
      ratioRow(`supervisor peak RSS during the download`, dl.supervisorPeak, dl.bare, 'bare node idle', MiB, 'MiB', '≤ 1.2×'),
      ratioRow('agent peak RSS while the sim reads the patch', dl.applyPeak, dl.bare, 'bare node idle', MiB, 'MiB'),
      // Throughput and CPU are for the record (no target): on a shared machine the MiB/s moves
      // with everyone else's load; the agent's CPU seconds per GiB hold better.
      { metric: `download over HTTPS, task to verified (median of ${o.rounds})`, value: median(dl.seconds.map((s) => o.downloadMiB / s)), unit: 'MiB/s' },
      { metric: 'agent CPU (user + system) per GiB downloaded', value: median(dl.agentCpuSeconds.map((c) => c / (o.downloadMiB / 1024))), unit: 's' },
      { metric: 'spawn → online, first start (enrolls)', value: round.onlineMs[0]!, unit: 'ms', baseline: { name: 'bare node → /healthz answered', value: round.answeredMs[0]! } },
      ratioRow('spawn → online, restart', round.onlineMs.slice(1), round.answeredMs.slice(1), 'bare node → /healthz answered', 1, 'ms'),
      diffRow('start → online after the manager answers (restart − bare node)', round.onlineMs.slice(1).map((t, i) => t - round.answeredMs[i + 1]!), '≤ 1000 ms'),
    );
    return { rows, raw };
  } finally {
    await supervisor?.stop(15_000);
    bare.kill();
    await manager.close();
    dir.cleanup();
  }
}
