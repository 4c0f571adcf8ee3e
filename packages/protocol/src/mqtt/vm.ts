import Type, { type Static } from 'typebox';

export const PowerState = Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('suspended')]);
export type PowerState = Static<typeof PowerState>;

/** A virtual machine as the device's hypervisor reports it. */
export const Vm = Type.Object(
  {
    /** The hypervisor's own id for the VM (stable for its lifetime on that host). */
    id: Type.String({ minLength: 1, maxLength: 128 }),
    name: Type.String({ minLength: 1, maxLength: 255 }),
    powerState: PowerState,
    vcpus: Type.Integer({ minimum: 1, maximum: 1024 }),
    memoryMB: Type.Integer({ minimum: 1 }),
    diskGB: Type.Number({ minimum: 0 }),
    guestOs: Type.Optional(Type.String({ maxLength: 255 })),
  },
  { additionalProperties: false },
);
export type Vm = Static<typeof Vm>;
