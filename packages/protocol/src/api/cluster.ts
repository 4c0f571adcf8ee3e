import Type, { type Static } from 'typebox';

/** One manager process sharing the database (docs/scale-out.md). */
export const ClusterManager = Type.Object({
  id: Type.String(),
  hostname: Type.String(),
  pid: Type.Integer(),
  version: Type.String(),
  /** `embedded` (its own broker: a single manager) or `external` (a broker all managers share). */
  broker: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  lastHeartbeatAt: Type.String({ format: 'date-time' }),
  /** False once its heartbeat is more than 3 s old: killed, hung or cut off from the database. */
  alive: Type.Boolean(),
});
export type ClusterManager = Static<typeof ClusterManager>;

/**
 * `GET /api/v1/cluster`: the managers sharing this database, which of them runs each piece of
 * work that must run once (leases), and which one answered.
 */
export const ClusterStatus = Type.Object({
  answeredBy: Type.String(),
  database: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')]),
  broker: Type.Object({ kind: Type.String(), ok: Type.Boolean(), detail: Type.Optional(Type.String()) }),
  managers: Type.Array(ClusterManager),
  leases: Type.Array(Type.Object({ name: Type.String(), holder: Type.String(), expiresAt: Type.String({ format: 'date-time' }) })),
});
export type ClusterStatus = Static<typeof ClusterStatus>;
