import Type, { type Static } from 'typebox';
import { Page, Paging, Timestamp } from './common.js';
import { NAME_LIMITS, TASK_TIMEOUT_MAX_SEC } from '../constants.js';
import { MAX_WAVES } from '../rollout-plan.js';
import { TaskError, TaskOperation } from '../mqtt/tasks.js';

/** `12`, or `"10%"` of the rollout's devices. */
const WaveSize = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^\\d+(\\.\\d+)?%$', maxLength: 8 })]);

/** Wave sizes: a list of counts or percentages, or an exponential ramp (first wave, growth factor, cap). */
export const WavePlan = Type.Union([
  Type.Object({ sizes: Type.Array(WaveSize, { minItems: 1, maxItems: MAX_WAVES }) }, { additionalProperties: false }),
  Type.Object(
    {
      ramp: Type.Object(
        {
          first: Type.Integer({ minimum: 1 }),
          factor: Type.Number({ minimum: 1, maximum: 100 }),
          cap: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  ),
]);

/** What happens when the error threshold trips: `pause` (resume by hand) or `abort`. */
export const ThresholdAction = Type.Union([Type.Literal('pause'), Type.Literal('abort')]);

/** A count of failures, or a share of the devices that finished, or both (whichever trips first). */
export const ErrorThreshold = Type.Object(
  {
    count: Type.Optional(Type.Integer({ minimum: 1 })),
    share: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    /** The share is judged once at least this many devices finished. Default 5. */
    minFinished: Type.Optional(Type.Integer({ minimum: 1 })),
    action: Type.Optional(ThresholdAction),
  },
  { additionalProperties: false },
);

export const Membership = Type.Union([Type.Literal('fixed'), Type.Literal('dynamic')]);

/** Everything that shapes how a rollout proceeds; each field's default is in ROLLOUT_DEFAULTS. */
const PolicyFields = {
  waves: Type.Optional(WavePlan),
  deviceTimeoutSec: Type.Optional(Type.Integer({ minimum: 10, maximum: TASK_TIMEOUT_MAX_SEC })),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
  maxInProgress: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  successShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  soakSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
  errorThreshold: Type.Optional(ErrorThreshold),
  deadlineSec: Type.Optional(Type.Integer({ minimum: 60, maximum: TASK_TIMEOUT_MAX_SEC })),
  verifySec: Type.Optional(Type.Integer({ minimum: 10, maximum: 24 * 3600 })),
};

/** `POST /rollouts`: one operation to a group, a tag or a list of devices (exactly one), in waves. */
export const CreateRollout = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: NAME_LIMITS.rollout }),
    operation: TaskOperation,
    groupId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** Waves take devices in this order (a group's or tag's devices go by name). */
    deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
    /** `fixed`: the targets at creation; `dynamic` (group or tag): devices that join later get it too. */
    membership: Type.Optional(Membership),
    ...PolicyFields,
  },
  { additionalProperties: false },
);
export type CreateRollout = Static<typeof CreateRollout>;

/** `POST /rollouts/plan`: the waves a rollout would have, without creating it (the wizard's preview). */
export const RolloutPlanRequest = Type.Object(
  {
    groupId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
    waves: Type.Optional(WavePlan),
  },
  { additionalProperties: false },
);
export type RolloutPlanRequest = Static<typeof RolloutPlanRequest>;
export const RolloutPlan = Type.Object({ total: Type.Integer({ minimum: 0 }), waves: Type.Array(Type.Integer({ minimum: 1 })) });
export type RolloutPlan = Static<typeof RolloutPlan>;

/** The policy as stored: every default filled in. */
export const RolloutPolicy = Type.Object({
  waves: WavePlan,
  deviceTimeoutSec: Type.Integer(),
  retries: Type.Integer(),
  maxInProgress: Type.Integer(),
  successShare: Type.Number(),
  soakSec: Type.Integer(),
  errorThreshold: Type.Object({
    count: Type.Union([Type.Integer(), Type.Null()]),
    share: Type.Union([Type.Number(), Type.Null()]),
    minFinished: Type.Integer(),
    action: ThresholdAction,
  }),
  deadlineSec: Type.Integer(),
  verifySec: Type.Integer(),
});
export type RolloutPolicy = Static<typeof RolloutPolicy>;

/**
 * `running` → `paused` (by hand, error threshold, or a wave that could not meet its gate) →
 * `running` … → `completed` (every device final, or the deadline passed) | `aborted`.
 */
export const RolloutState = Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('aborted'), Type.Literal('completed')]);
export type RolloutState = Static<typeof RolloutState>;

/**
 * A device's place in a rollout: `pending` (no task yet: its wave has not started, it is
 * offline, or the in-progress limit is reached), `active` (its task is queued or running),
 * `verifying` (an agent update or patch succeeded; waiting for the device to report healthy on
 * the new version), `succeeded`, `failed`, `skipped` (aborted or the deadline passed first).
 */
export const RolloutDeviceState = Type.Union([
  Type.Literal('pending'), Type.Literal('active'), Type.Literal('verifying'),
  Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('skipped'),
]);
export type RolloutDeviceState = Static<typeof RolloutDeviceState>;

export const RolloutCounts = Type.Object({
  total: Type.Integer(), pending: Type.Integer(), active: Type.Integer(), verifying: Type.Integer(),
  succeeded: Type.Integer(), failed: Type.Integer(), skipped: Type.Integer(),
});
export type RolloutCounts = Static<typeof RolloutCounts>;

export const RolloutWave = Type.Object({
  /** 1-based. */
  wave: Type.Integer({ minimum: 1 }),
  size: Type.Integer({ minimum: 0 }),
  startedAt: Type.Union([Timestamp, Type.Null()]),
  gateMetAt: Type.Union([Timestamp, Type.Null()]),
  counts: RolloutCounts,
});
export type RolloutWave = Static<typeof RolloutWave>;

export const Rollout = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: RolloutState,
  /** Why it is paused or ended: `by_operator`, `error_threshold`, `success_gate`, `deadline`, or null. */
  reason: Type.Union([Type.String(), Type.Null()]),
  operation: TaskOperation,
  target: Type.Object({
    groupId: Type.Optional(Type.String()),
    tag: Type.Optional(Type.String()),
    /** For a list of devices: how many were listed. */
    deviceCount: Type.Optional(Type.Integer()),
  }),
  membership: Membership,
  policy: RolloutPolicy,
  /** The wave being run (1-based); 0 before the first. */
  currentWave: Type.Integer({ minimum: 0 }),
  waves: Type.Array(RolloutWave),
  counts: RolloutCounts,
  createdBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  deadlineAt: Timestamp,
});
export type Rollout = Static<typeof Rollout>;
export const RolloutPage = Page(Rollout);

export const RolloutQuery = Type.Object(
  { ...Paging, state: Type.Optional(RolloutState) },
  { additionalProperties: false },
);
export type RolloutQuery = Static<typeof RolloutQuery>;

export const RolloutDevice = Type.Object({
  deviceId: Type.String(),
  /** The device's name now (empty if it was decommissioned). */
  name: Type.String(),
  wave: Type.Integer({ minimum: 1 }),
  state: RolloutDeviceState,
  taskId: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer({ minimum: 0 }),
  error: Type.Union([TaskError, Type.Null()]),
  updatedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
});
export type RolloutDevice = Static<typeof RolloutDevice>;
export const RolloutDevicePage = Page(RolloutDevice);

export const RolloutDeviceQuery = Type.Object(
  { ...Paging, state: Type.Optional(RolloutDeviceState), wave: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export type RolloutDeviceQuery = Static<typeof RolloutDeviceQuery>;

/** Pause, resume or abort: who is in the audit log; why is this. */
export const RolloutAction = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
export type RolloutAction = Static<typeof RolloutAction>;
