import Type, { type Static } from 'typebox';
import { NAME_LIMITS } from '../constants.js';
import { Page, Paging, Timestamp } from './common.js';
import { DeviceStatus, Presence } from './devices.js';
import { HypervisorKind } from '../mqtt/host-facts.js';

const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:/=-]+$' });

/**
 * A saved query over what the manager knows of its devices; every field given must match
 * (AND). Evaluated each time the group is read, so a device that starts matching is a member
 * from then on.
 */
export const GroupQuery = Type.Object(
  {
    /** Devices carrying every one of these tags. */
    tags: Type.Optional(Type.Array(Tag, { minItems: 1, maxItems: 16, uniqueItems: true })),
    hypervisor: Type.Optional(HypervisorKind),
    /** The agent version the device last reported, exactly. */
    agentVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** The hypervisor build its host facts last reported, exactly. */
    hostBuild: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    presence: Type.Optional(Presence),
    status: Type.Optional(DeviceStatus),
    /** The device name, case-insensitive, with `*` for any run of characters and `?` for one. */
    namePattern: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false },
);
export type GroupQuery = Static<typeof GroupQuery>;

const GroupName = Type.String({ minLength: 1, maxLength: NAME_LIMITS.group, pattern: '^[A-Za-z0-9][A-Za-z0-9._ -]*$' });
const DeviceIds = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 10_000, uniqueItems: true });

/** `POST /groups`: a fixed list (`deviceIds`) or a saved query (`query`), exactly one. */
export const CreateGroup = Type.Object(
  {
    name: GroupName,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    deviceIds: Type.Optional(DeviceIds),
    query: Type.Optional(GroupQuery),
  },
  { additionalProperties: false },
);
export type CreateGroup = Static<typeof CreateGroup>;

/** `PATCH /groups/{id}`: a fixed group takes `deviceIds` (the whole new list), a query group `query`. */
export const UpdateGroup = Type.Object(
  {
    name: Type.Optional(GroupName),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    deviceIds: Type.Optional(DeviceIds),
    query: Type.Optional(GroupQuery),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateGroup = Static<typeof UpdateGroup>;

export const GroupKind = Type.Union([Type.Literal('static'), Type.Literal('query')]);
export type GroupKind = Static<typeof GroupKind>;

export const Group = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  kind: GroupKind,
  /** The saved query (kind `query`); null for a fixed list. */
  query: Type.Union([GroupQuery, Type.Null()]),
  /** Members now (for a fixed list: those of its devices that still exist). */
  deviceCount: Type.Integer({ minimum: 0 }),
  createdBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Group = Static<typeof Group>;
export const GroupPage = Page(Group);
export const GroupListQuery = Type.Object({ ...Paging }, { additionalProperties: false });
