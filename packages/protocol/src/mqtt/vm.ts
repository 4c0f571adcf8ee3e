import Type, { type Static } from 'typebox';
import { VM_LIMITS } from '../constants.js';

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

// ---------------------------------------------------------------------------------------------
// VM operations. One set of schemas for the REST API (`devices/{id}/vms…`), the task messages
// and the agent's driver port, so a request the manager accepts is one every driver accepts.
// The limits are the narrowest that all three hypervisors (ESXi, QEMU, sim) honour.
// ---------------------------------------------------------------------------------------------

/**
 * A VM name Pallas creates or renames to: 1–80 characters, letters, digits, `.`, `_`, `-` and
 * inner spaces (no leading or trailing space). 80 is ESXi's display-name limit; the character
 * set is safe as a QEMU `-name`, a file name on a datastore and in a URL path segment.
 * (Names of VMs made outside Pallas are only bounded by `Vm.name`, 255 characters.)
 */
export const VmName = Type.String({ ...VM_LIMITS.name });
export type VmName = Static<typeof VmName>;

/** Virtual CPUs: 1–128 (ESXi 7's per-VM limit on the hardware versions edge hosts run). */
export const VmVcpus = Type.Integer({ ...VM_LIMITS.vcpus });
/** Memory in MiB: 64 MiB to 1 TiB. */
export const VmMemoryMB = Type.Integer({ ...VM_LIMITS.memoryMB });

/** What to create: the VM's shape. Deploying from an OVA takes its shape from the OVA instead. */
export const VmSpec = Type.Object(
  {
    name: VmName,
    vcpus: VmVcpus,
    memoryMB: VmMemoryMB,
    /** Size of the first disk in GB (decimal), more than 0 and at most 65,536 (64 TB). */
    diskGB: Type.Number({ ...VM_LIMITS.diskGB }),
    /** Network (port group, bridge) for the first NIC; default: the host's first network. */
    network: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    /** Image to boot from (ISO or disk image path/URL the driver understands); default: none. */
    bootImage: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type VmSpec = Static<typeof VmSpec>;

/**
 * A change to an existing VM: at least one field. Renaming works in any power state; vCPUs
 * and memory only while the VM is off (no hot-plug: not every guest or hypervisor has it).
 */
export const VmPatch = Type.Object(
  {
    name: Type.Optional(VmName),
    vcpus: Type.Optional(VmVcpus),
    memoryMB: Type.Optional(VmMemoryMB),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type VmPatch = Static<typeof VmPatch>;

/**
 * A power operation (`POST devices/{id}/vms/{vmId}/power {action}`):
 * `on` powers on (or resumes a suspended VM); `off` cuts power at once (hard);
 * `reset` is a hard reset of a running VM; `shutdown` asks the guest OS to shut down cleanly
 * (ACPI / guest tools) and completes when the VM is off.
 */
export const PowerAction = Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('reset'), Type.Literal('shutdown')]);
export type PowerAction = Static<typeof PowerAction>;
