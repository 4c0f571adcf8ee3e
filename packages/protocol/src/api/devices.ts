import Type, { type Static } from 'typebox';
import { NAME_LIMITS } from '../constants.js';
import { Page, Paging, Timestamp } from './common.js';
import { HostFacts, HypervisorKind } from '../mqtt/host-facts.js';
import { Vm } from '../mqtt/vm.js';

export const Presence = Type.Union([Type.Literal('online'), Type.Literal('offline')]);
export type Presence = Static<typeof Presence>;

/**
 * Where a device stands with the manager: `active` (may connect), `pending` (enrolled, waiting
 * for an operator's approval when the manager runs with --require-approval) or `blocked`
 * (its credential is refused on the broker until an operator unblocks it).
 */
export const DeviceStatus = Type.Union([Type.Literal('active'), Type.Literal('pending'), Type.Literal('blocked')]);
export type DeviceStatus = Static<typeof DeviceStatus>;

/** Warnings raised on a device, e.g. `credential_clone_suspected` (docs/security.md). */
export const DeviceFlag = Type.String({ maxLength: 64 });

const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:/=-]+$' });

export const Device = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  tags: Type.Array(Type.String()),
  presence: Presence,
  status: DeviceStatus,
  flags: Type.Array(DeviceFlag),
  lastSeenAt: Type.Union([Timestamp, Type.Null()]),
  enrolledAt: Timestamp,
  facts: Type.Union([HostFacts, Type.Null()]),
  vms: Type.Array(Vm),
});
export type Device = Static<typeof Device>;
export const DevicePage = Page(Device);

/** `GET /devices/{id}/vms`: the device's last reported inventory. */
export const VmList = Type.Array(Vm);

/** The path of one VM of one device. */
export const VmParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), vmId: Type.String({ minLength: 1, maxLength: 128 }) });

/**
 * Orders of the device list: a field, descending with a leading `-`. Ties are broken by id,
 * so pages never overlap. Default `name`.
 */
export const DeviceSort = Type.Union([
  Type.Literal('name'), Type.Literal('-name'),
  Type.Literal('lastSeenAt'), Type.Literal('-lastSeenAt'),
  Type.Literal('enrolledAt'), Type.Literal('-enrolledAt'),
  Type.Literal('presence'), Type.Literal('-presence'),
]);
export type DeviceSort = Static<typeof DeviceSort>;

export const DeviceQuery = Type.Object(
  {
    ...Paging,
    presence: Type.Optional(Presence),
    status: Type.Optional(DeviceStatus),
    /** Case-insensitive substring of the device name. */
    name: Type.Optional(Type.String({ maxLength: 255 })),
    tag: Type.Optional(Tag),
    /** The hypervisor kind its host facts report (devices that reported none never match). */
    hypervisor: Type.Optional(HypervisorKind),
    sort: Type.Optional(DeviceSort),
  },
  { additionalProperties: false },
);
export type DeviceQuery = Static<typeof DeviceQuery>;

export const DevicePatch = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: NAME_LIMITS.device })),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 64, uniqueItems: true })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type DevicePatch = Static<typeof DevicePatch>;
