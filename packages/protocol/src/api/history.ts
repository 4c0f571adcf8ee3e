import Type, { type Static } from 'typebox';

/**
 * History kept by the manager (docs/history.md): a range `[from, to)` read at a step. A step
 * under 15 minutes reads the 1-minute buckets (kept 25 h), a longer one the 15-minute buckets
 * (kept 31 days). Points are sparse: a bucket without data has no point (a gap on a chart).
 */
const HistoryRange = {
  /** Start, inclusive; default `to` minus 24 hours. */
  from: Type.Optional(Type.String({ format: 'date-time' })),
  /** End, exclusive; default now. */
  to: Type.Optional(Type.String({ format: 'date-time' })),
  /** Seconds per point, a multiple of 60; default 60 for ranges up to 25 h, else 900. At most 2,000 points. */
  step: Type.Optional(Type.Integer({ minimum: 60, maximum: 31 * 86400, multipleOf: 60 })),
};

export const HistoryQuery = Type.Object(HistoryRange, { additionalProperties: false });
export type HistoryQuery = Static<typeof HistoryQuery>;

/** The fleet series: `presence` (devices by state), `tasks` (ended, by outcome/kind/error), `enrollments`. */
export const FleetMetric = Type.Union([Type.Literal('presence'), Type.Literal('tasks'), Type.Literal('enrollments')]);
export type FleetMetric = Static<typeof FleetMetric>;

export const FleetHistoryQuery = Type.Object({
  ...HistoryRange,
  /** Only these series (comma-separated); default all. */
  metric: Type.Optional(Type.String({ pattern: '^(presence|tasks|enrollments)(,(presence|tasks|enrollments))*$', maxLength: 64 })),
}, { additionalProperties: false });
export type FleetHistoryQuery = Static<typeof FleetHistoryQuery>;

/** A quantity over one point's buckets. */
export const Stat = Type.Object({ min: Type.Number(), avg: Type.Number(), max: Type.Number() });
export type Stat = Static<typeof Stat>;

/**
 * One step of a device's series. A quantity no report in the step carried is absent (not
 * null: optional fields keep the answer of a day's 1,440 points cheap to serialize).
 */
export const DeviceHistoryPoint = Type.Object({
  /** Start of the point's step. */
  at: Type.String({ format: 'date-time' }),
  /** Status reports in the step. */
  samples: Type.Integer({ minimum: 0 }),
  cpuPct: Type.Optional(Stat),
  memoryUsedMB: Type.Optional(Stat),
  memoryTotalMB: Type.Optional(Type.Number()),
  datastoreUsedGB: Type.Optional(Stat),
  datastoreCapacityGB: Type.Optional(Type.Number()),
});
export type DeviceHistoryPoint = Static<typeof DeviceHistoryPoint>;

/** A stretch of time in one presence state, clipped to the range; `to` null while it lasts. */
export const PresenceInterval = Type.Object({
  state: Type.String(),
  from: Type.String({ format: 'date-time' }),
  to: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type PresenceInterval = Static<typeof PresenceInterval>;

/** Per state: how many times the device entered it in the range, and for how long in all and at most. */
export const PresenceSummary = Type.Object({
  state: Type.String(),
  times: Type.Integer({ minimum: 0 }),
  totalSec: Type.Number({ minimum: 0 }),
  longestSec: Type.Number({ minimum: 0 }),
});
export type PresenceSummary = Static<typeof PresenceSummary>;

/** `GET /api/v1/devices/{id}/history`. */
export const DeviceHistory = Type.Object({
  deviceId: Type.String(),
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  step: Type.Integer(),
  points: Type.Array(DeviceHistoryPoint),
  /** Presence over the range, oldest first; before the first known transition nothing is said. */
  presence: Type.Array(PresenceInterval),
  presenceSummary: Type.Array(PresenceSummary),
});
export type DeviceHistory = Static<typeof DeviceHistory>;

export const FleetHistoryPoint = Type.Object({
  at: Type.String({ format: 'date-time' }),
  /** Gauges (presence): the minimum, mean and maximum of the samples; counts: sum is the count. */
  min: Type.Number(),
  avg: Type.Number(),
  max: Type.Number(),
  sum: Type.Number(),
});
export type FleetHistoryPoint = Static<typeof FleetHistoryPoint>;

export const FleetSeries = Type.Object({
  metric: FleetMetric,
  /** `presence`: the state; `tasks`: `state/kind/error code` (e.g. `failed/vm.deploy/download_failed`); `enrollments`: empty. */
  label: Type.String(),
  points: Type.Array(FleetHistoryPoint),
});
export type FleetSeries = Static<typeof FleetSeries>;

/** `GET /api/v1/fleet/history`. */
export const FleetHistory = Type.Object({
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  step: Type.Integer(),
  series: Type.Array(FleetSeries),
});
export type FleetHistory = Static<typeof FleetHistory>;
