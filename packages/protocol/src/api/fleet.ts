import Type, { type Static } from 'typebox';

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
