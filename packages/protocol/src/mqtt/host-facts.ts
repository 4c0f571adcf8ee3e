import Type, { type Static } from 'typebox';

export const HypervisorKind = Type.Union([Type.Literal('sim'), Type.Literal('qemu'), Type.Literal('esxi')]);
export type HypervisorKind = Static<typeof HypervisorKind>;

const Name = Type.String({ minLength: 1, maxLength: 255 });

export const Datastore = Type.Object(
  {
    name: Name,
    capacityGB: Type.Number({ minimum: 0 }),
    freeGB: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type Datastore = Static<typeof Datastore>;

/** What a device says about its host: reported at enrollment and in every status message. */
export const HostFacts = Type.Object(
  {
    hostname: Name,
    hypervisor: Type.Object(
      {
        kind: HypervisorKind,
        version: Type.String({ maxLength: 64 }),
        build: Type.Optional(Type.String({ maxLength: 64 })),
      },
      { additionalProperties: false },
    ),
    model: Type.Optional(Type.String({ maxLength: 255 })),
    cpu: Type.Object(
      {
        model: Type.String({ maxLength: 255 }),
        cores: Type.Integer({ minimum: 0, maximum: 100_000 }),
        mhz: Type.Optional(Type.Number({ minimum: 0 })),
        usagePct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
      },
      { additionalProperties: false },
    ),
    memory: Type.Object(
      {
        totalMB: Type.Integer({ minimum: 0 }),
        usedMB: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false },
    ),
    datastores: Type.Array(Datastore, { maxItems: 256 }),
    networks: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 256 }),
    agentVersion: Type.String({ minLength: 1, maxLength: 64 }),
    /** Seconds since the host booted. */
    uptimeSec: Type.Integer({ minimum: 0 }),
    /** Seconds since the agent process started. */
    agentUptimeSec: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type HostFacts = Static<typeof HostFacts>;
