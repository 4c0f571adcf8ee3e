import Type, { type Static } from 'typebox';
import { HostFacts } from './host-facts.js';
import { Vm } from './vm.js';

const Timestamp = Type.String({ format: 'date-time' });

/**
 * `pallas/v1/d/{id}/presence` — published (QoS 1, not retained) with `online` right after the
 * agent connects; the same topic carries the agent's last will with `offline`, which the
 * broker publishes when the link drops or keepalive lapses.
 */
export const PresenceMessage = Type.Object(
  {
    state: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
    /** Absent in the last will, which is written at connect time; the manager stamps its own clock. */
    at: Type.Optional(Timestamp),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
    reason: Type.Optional(Type.String({ maxLength: 255 })),
    /**
     * The MQTT username the agent logged in with. On an external broker a device has two
     * usernames while a credential rotation is in progress (`<id>` and `<id>.b`); this tells
     * the manager which one is live, so it can delete the other.
     */
    username: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type PresenceMessage = Static<typeof PresenceMessage>;

/** `pallas/v1/d/{id}/status` — periodic host facts and VM inventory (QoS 1). */
export const StatusMessage = Type.Object(
  {
    /**
     * Counts up from 0 in each agent process; stored with the status to help spot gaps. At
     * most 2^31 - 1, the stored column's range (68 years of a report a second).
     */
    seq: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
    sentAt: Timestamp,
    facts: HostFacts,
    vms: Type.Array(Vm, { maxItems: 4096 }),
  },
  { additionalProperties: false },
);
export type StatusMessage = Static<typeof StatusMessage>;

/** `pallas/v1/d/{id}/cmd/control` — device-level commands from the manager. */
export const ControlMessage = Type.Union([
  Type.Object(
    {
      type: Type.Literal('decommission'),
      reason: Type.Optional(Type.String({ maxLength: 255 })),
    },
    { additionalProperties: false },
  ),
  /**
   * A new MQTT password for the device (docs/security.md, "Rotation"). The device reconnects
   * with it and keeps its old one until that connection succeeds; the manager accepts both
   * until the first successful connection with the new one, then only the new one.
   */
  Type.Object(
    {
      type: Type.Literal('rotate-credential'),
      password: Type.String({ minLength: 16, maxLength: 256 }),
      /**
       * The MQTT username that goes with the new password (external broker: the new credential
       * is a second broker client). Absent: the username does not change.
       */
      username: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    },
    { additionalProperties: false },
  ),
]);
export type ControlMessage = Static<typeof ControlMessage>;
