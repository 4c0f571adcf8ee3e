/**
 * Scenario "rollout": the same operation to N simulated devices, as a plain fan-out
 * (`POST /tasks`, every device at once: the baseline, measured in the same run) and as a
 * rollout in 5 equal waves with no soak time, a 100 % success gate and no in-progress limit.
 * A rollout cannot beat the fan-out (each wave waits for the one before), so what is measured
 * is what the staging costs: wall time per device and manager CPU per device against the
 * fan-out's (target ≤ 1.2×), wall time against the same waves sent by hand one after the other
 * (the floor of any staged rollout: what is left is the engine's own work), and the manager's
 * memory after it (bounded: no per-device state in memory beyond a tick's batch).
 * The devices are real agents (sim driver) in this process; the manager is its own process.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet } from '@pallas/sim';
import type { PallasClient } from '@pallas/client';
import { startManagerProcess, tempDir } from '@pallas/testkit';
import { metricValue, rssBytes } from '../lib/proc.js';
import type { Row } from '../lib/stats.js';

export interface RolloutOptions {
  devices: number;
  /** Measured runs of each after a warm-up of each. */
  rounds: number;
}

const SETTLE_MS = 4000;
const WAVES = 5;

export async function runRollout(o: RolloutOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = tempDir('pallas-bench-rollout-');
  const fleetDir = existsSync('/dev/shm') ? tempDir('pallas-bench-fleet-', '/dev/shm') : tempDir('pallas-bench-fleet-');
  const manager = await startManagerProcess({ dataDir: join(dir.path, 'manager'), args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'] });
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    const admin = await manager.client();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    fleet = await startFleet({ manager: manager.httpUrl, token, devices: o.devices, stateDir: fleetDir.path, statusIntervalSec: 86400, hostStateFiles: false });
    await fleet.waitOnline(o.devices, 180_000);
    const ids = fleet.agents.map((a) => a.deviceId!);
    const cpu = async () => metricValue(await (await fetch(`${manager.httpUrl}/metrics`)).text(), 'pallas_process_cpu_seconds_total');
    const op = (name: string) => ({ kind: 'vm.create' as const, spec: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } });

    const fanOut = async (name: string) => {
      const cpu0 = await cpu();
      const t0 = performance.now();
      const { taskIds } = await admin.call('createBulkTask', { body: { operation: op(name), deviceIds: ids } });
      await waitAll(admin, taskIds);
      return { ms: performance.now() - t0, cpuMs: (await cpu() - cpu0) * 1000 };
    };
    // The rollout's own floor: the same waves sent by hand, each a fan-out of its share once
    // the one before has ended. What the rollout takes beyond this is its engine's work.
    const byHand = async (name: string) => {
      const cpu0 = await cpu();
      const t0 = performance.now();
      const size = Math.ceil(ids.length / WAVES);
      for (let w = 0; w < WAVES; w++) {
        const { taskIds } = await admin.call('createBulkTask', { body: { operation: op(`${name}-${w}`), deviceIds: ids.slice(w * size, (w + 1) * size) } });
        await waitAll(admin, taskIds);
      }
      return { ms: performance.now() - t0, cpuMs: (await cpu() - cpu0) * 1000 };
    };
    const rollout = async (name: string) => {
      const cpu0 = await cpu();
      const t0 = performance.now();
      const r = await admin.call('createRollout', { body: { name, operation: op(name), deviceIds: ids, waves: { sizes: [`${100 / WAVES}%`] }, maxInProgress: o.devices, successShare: 1 } });
      const end = await until(admin, r.id);
      if (end.counts.succeeded !== o.devices) throw new Error(`rollout ${r.id}: ${JSON.stringify(end.counts)}`);
      // Per wave: from its start to its gate met (its devices' own time), and from the gate met
      // to the next wave's start (the engine's own gap; 0 when opened in the same tick).
      const ms = (a: string | null, b: string | null) => (a && b ? Date.parse(b) - Date.parse(a) : null);
      const waveMs = end.waves.map((w) => ms(w.startedAt, w.gateMetAt));
      const gapMs = end.waves.slice(1).map((w, i) => ms(end.waves[i]!.gateMetAt, w.startedAt));
      return { ms: performance.now() - t0, cpuMs: (await cpu() - cpu0) * 1000, waves: end.waves.length, waveMs, gapMs };
    };

    await fanOut('warm-fan-out');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    await rollout('warm-rollout');
    const fan: Array<{ ms: number; cpuMs: number }> = [];
    const hand: Array<{ ms: number; cpuMs: number }> = [];
    const roll: Array<Awaited<ReturnType<typeof rollout>>> = [];
    for (let i = 1; i <= o.rounds; i++) {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      fan.push(await fanOut(`fan-out-${i}`));
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      roll.push(await rollout(`rollout-${i}`));
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      hand.push(await byHand(`by-hand-${i}`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const perDevice = (xs: number[]) => median(xs) / o.devices;
    const rss = rssBytes(manager.pid) / 2 ** 20;
    const rows: Row[] = [
      { metric: 'wall time per device', value: perDevice(roll.map((r) => r.ms)), unit: 'ms', baseline: { name: 'fan-out', value: perDevice(fan.map((r) => r.ms)) }, target: '≤ 1.2×' },
      { metric: 'wall time per device', value: perDevice(roll.map((r) => r.ms)), unit: 'ms', baseline: { name: `the same ${WAVES} waves by hand`, value: perDevice(hand.map((r) => r.ms)) }, target: '≤ 1.2×' },
      { metric: 'manager CPU per device', value: perDevice(roll.map((r) => r.cpuMs)), unit: 'ms', baseline: { name: 'fan-out', value: perDevice(fan.map((r) => r.cpuMs)) }, target: '≤ 1.2×' },
      { metric: 'manager RSS after all runs', value: rss, unit: 'MiB' },
    ];
    return { rows, raw: { devices: o.devices, waves: roll[0]?.waves, fanOut: fan, byHand: hand, rollout: roll, rssMiB: rss } };
  } finally {
    await fleet?.stop();
    await manager.close();
    dir.cleanup();
    fleetDir.cleanup();
  }
}

/**
 * Polls every 100 ms, as the rollout's end is polled, until no task is queued, sent or running
 * (the same method for both sides, so neither is favoured); every task must have succeeded.
 */
async function waitAll(admin: PallasClient, taskIds: string[]): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const open = await Promise.all((['queued', 'sent', 'running'] as const).map((state) => admin.call('listTasks', { query: { state, limit: 1 } })));
    if (open.every((p) => p.total === 0)) break;
    if (Date.now() > deadline) throw new Error('tasks still open after 300 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const failed = await admin.call('listTasks', { query: { state: 'failed', limit: 1 } });
  if (failed.total > 0) throw new Error(`${failed.total} of ${taskIds.length} tasks failed, e.g. ${JSON.stringify(failed.items[0]?.error)}`);
}

async function until(admin: PallasClient, id: string) {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const r = await admin.call('getRollout', { params: { id } });
    if (r.state !== 'running') return r;
    if (Date.now() > deadline) throw new Error(`rollout ${id} still running after 300 s`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
