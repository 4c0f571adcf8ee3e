import Type, { type Static } from 'typebox';
import { Presence } from './devices.js';

const Count = Type.Integer({ minimum: 0 });

/** One value of a device property and how many devices have it (null: not reported yet). */
export const FleetBucket = Type.Object({ value: Type.Union([Type.String(), Type.Null()]), count: Count });
export type FleetBucket = Static<typeof FleetBucket>;

/**
 * `GET /api/v1/fleet/summary`: the counts behind the console's overview, computed with a few
 * grouped queries so it costs the same at 10 devices and at 10,000.
 */
export const FleetSummary = Type.Object({
  /** Devices by presence (docs/manager.md, "Presence"); the three add up to `total`. */
  devices: Type.Object({ total: Count, online: Count, unresponsive: Count, offline: Count }),
  tasks: Type.Object({
    /** Tasks not final yet, whatever their age. */
    queued: Count,
    sent: Count,
    running: Count,
    /** Tasks created in the last 24 hours that reached a final state, by state. */
    last24h: Type.Object({ succeeded: Count, failed: Count, cancelled: Count, timedOut: Count }),
  }),
  /** Devices by hypervisor kind and by agent version, most common first. */
  hypervisors: Type.Array(FleetBucket),
  agentVersions: Type.Array(FleetBucket),
  generatedAt: Type.String({ format: 'date-time' }),
});
export type FleetSummary = Static<typeof FleetSummary>;

/**
 * `GET /api/v1/fleet/failing-devices`: the devices whose tasks failed most since `from` (the
 * overview's "Failing devices"). A task counts when it ended `failed` or `timed_out` in the range.
 */
export const FailingDevicesQuery = Type.Object({
  /** Start, inclusive; default 24 hours ago. */
  from: Type.Optional(Type.String({ format: 'date-time' })),
  /** How many devices, most failures first; default 10. */
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10 })),
}, { additionalProperties: false });
export type FailingDevicesQuery = Static<typeof FailingDevicesQuery>;

export const FailingDevice = Type.Object({
  deviceId: Type.String(),
  name: Type.String(),
  presence: Presence,
  /** Tasks of the device that ended failed or timed out in the range. */
  failed: Count,
  lastFailedAt: Type.String({ format: 'date-time' }),
  /** The error code most of them ended with (`timed_out` for a missed deadline); null when none carried one. */
  topErrorCode: Type.Union([Type.String(), Type.Null()]),
});
export type FailingDevice = Static<typeof FailingDevice>;

export const FailingDevices = Type.Object({
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  /** Most failures first; ties: the latest failure first. Decommissioned devices are left out. */
  items: Type.Array(FailingDevice),
});
export type FailingDevices = Static<typeof FailingDevices>;
