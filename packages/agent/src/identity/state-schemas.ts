/**
 * The state dir's own files, as TypeBox schemas: the source of their checkers
 * (`src/checks/generated.ts`, made from them at build time). The running agent does not import
 * this module (only to explain a refused file): see `src/checks/`.
 */
import Type, { type Static } from 'typebox';

/** `device.json`: who this device is. Written once; never changes for a state dir. */
export const DeviceIdentity = Type.Object({
  deviceId: Type.String({ format: 'uuid' }),
  createdAt: Type.String({ format: 'date-time' }),
});
export type DeviceIdentity = Static<typeof DeviceIdentity>;

/**
 * `retired.json`: the manager decommissioned this device or refused its credential. While it
 * exists the agent refuses to start, token or not, until an operator asks for `--re-enroll`.
 */
export const RetiredMarker = Type.Object({
  /** Why, in words: the manager's decommission reason, or the refused credential. */
  reason: Type.String(),
  /** When the agent learned it. */
  at: Type.String({ format: 'date-time' }),
});
export type RetiredMarker = Static<typeof RetiredMarker>;
