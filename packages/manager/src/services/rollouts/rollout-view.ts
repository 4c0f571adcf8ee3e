import type { Rollout, RolloutCounts, RolloutDeviceState, RolloutPolicy, RolloutState, TaskOperation } from '@pallas/protocol';
import type { Selectable } from 'kysely';
import type { RolloutsTable } from '../../store/schema.js';
import type { Db } from '../../store/store.js';

export type RolloutRow = Selectable<RolloutsTable>;

/** Where a rollout's devices can be: entries in these still need the engine. */
export const OPEN_DEVICE_STATES: readonly RolloutDeviceState[] = ['pending', 'active', 'verifying'];
export const IN_PROGRESS: readonly RolloutDeviceState[] = ['active', 'verifying'];
export const ACTIVE_ROLLOUT: readonly RolloutState[] = ['running', 'paused'];

export interface StoredTarget { groupId?: string; tag?: string; deviceIds?: string[] }

export const emptyCounts = (): RolloutCounts => ({ total: 0, pending: 0, active: 0, verifying: 0, succeeded: 0, failed: 0, skipped: 0 });

/** Counts by wave (index 0 = the whole rollout), from one GROUP BY: never kept as counters, so concurrent ticks cannot lose one. */
export async function countsOf(db: Db, rolloutId: string, waves: number): Promise<RolloutCounts[]> {
  const out = Array.from({ length: waves + 1 }, emptyCounts);
  const rows = await db.selectFrom('rollout_devices').select(['wave', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('rollout_id', '=', rolloutId).groupBy(['wave', 'state']).execute();
  for (const r of rows) {
    const n = Number(r.n);
    const state = r.state as RolloutDeviceState;
    for (const c of [out[0]!, out[r.wave] ?? out[0]!]) {
      c[state] += n;
      c.total += n;
    }
  }
  // The whole rollout was counted twice where a wave's slot is missing; keep the total honest.
  if (rows.some((r) => out[r.wave] === undefined)) {
    const fixed = emptyCounts();
    for (const r of rows) {
      fixed[r.state as RolloutDeviceState] += Number(r.n);
      fixed.total += Number(r.n);
    }
    out[0] = fixed;
  }
  return out;
}

export async function loadRollout(db: Db, row: RolloutRow): Promise<Rollout> {
  const [counts, waves] = await Promise.all([
    countsOf(db, row.id, row.wave_count),
    db.selectFrom('rollout_waves').selectAll().where('rollout_id', '=', row.id).orderBy('wave').execute(),
  ]);
  const target = JSON.parse(row.target) as StoredTarget;
  return {
    id: row.id,
    name: row.name,
    state: row.state as RolloutState,
    reason: row.pause_reason,
    operation: JSON.parse(row.operation) as TaskOperation,
    target: target.deviceIds ? { deviceCount: target.deviceIds.length } : { ...target },
    membership: row.membership as Rollout['membership'],
    policy: JSON.parse(row.policy) as RolloutPolicy,
    currentWave: row.current_wave,
    waves: waves.map((w) => ({ wave: w.wave, size: w.size, startedAt: w.started_at, gateMetAt: w.gate_met_at, counts: counts[w.wave] ?? emptyCounts() })),
    counts: counts[0]!,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    deadlineAt: row.deadline_at,
  };
}
