import { ROLLOUT_DEFAULTS, planWaves, type CreateRollout, type RolloutPolicy, type WaveSpec } from '@pallas/protocol';
import { AppError } from '../../errors.js';

/**
 * The policy a rollout runs with: the request's fields with every default filled in, checked
 * beyond what the schema can say. Stored whole, so a later change of a default does not change
 * a rollout already running.
 */
export function policyOf(body: Omit<CreateRollout, 'name' | 'operation'>): RolloutPolicy {
  const t = body.errorThreshold;
  const waves = (body.waves ?? ROLLOUT_DEFAULTS.waves) as WaveSpec;
  try {
    planWaves(1, waves);
  } catch (err) {
    throw new AppError('invalid_request', `waves: ${(err as Error).message}`);
  }
  if ('ramp' in waves && waves.ramp.cap !== undefined && waves.ramp.cap < waves.ramp.first) {
    throw new AppError('invalid_request', `waves.ramp: cap (${waves.ramp.cap}) is smaller than the first wave (${waves.ramp.first})`);
  }
  const deadlineSec = body.deadlineSec ?? ROLLOUT_DEFAULTS.deadlineSec;
  const deviceTimeoutSec = body.deviceTimeoutSec ?? ROLLOUT_DEFAULTS.deviceTimeoutSec;
  if (deviceTimeoutSec > deadlineSec) {
    throw new AppError('invalid_request', `deviceTimeoutSec (${deviceTimeoutSec}) is longer than the rollout's deadlineSec (${deadlineSec})`);
  }
  // No threshold given: the default share. A threshold with only an action keeps the default share too.
  const share = t?.share ?? (t?.count === undefined ? ROLLOUT_DEFAULTS.errorShare : null);
  return {
    waves,
    deviceTimeoutSec,
    retries: body.retries ?? ROLLOUT_DEFAULTS.retries,
    maxInProgress: body.maxInProgress ?? ROLLOUT_DEFAULTS.maxInProgress,
    successShare: body.successShare ?? ROLLOUT_DEFAULTS.successShare,
    soakSec: body.soakSec ?? ROLLOUT_DEFAULTS.soakSec,
    errorThreshold: {
      count: t?.count ?? null,
      share,
      minFinished: t?.minFinished ?? ROLLOUT_DEFAULTS.errorMinFinished,
      action: t?.action ?? ROLLOUT_DEFAULTS.errorAction,
    },
    deadlineSec,
    verifySec: body.verifySec ?? ROLLOUT_DEFAULTS.verifySec,
  };
}

/** Whether the failures since the last resume trip the threshold. */
export function thresholdTripped(policy: RolloutPolicy, failed: number, finished: number): boolean {
  const { count, share, minFinished } = policy.errorThreshold;
  if (count !== null && failed >= count) return true;
  return share !== null && finished >= minFinished && finished > 0 && failed / finished >= share;
}

/** Devices of a wave of `size` that must succeed for the next wave to start. */
export function needed(policy: RolloutPolicy, size: number): number {
  return Math.ceil(policy.successShare * size - 1e-9);
}
