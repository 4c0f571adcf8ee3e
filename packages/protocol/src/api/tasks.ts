import Type, { type Static } from 'typebox';
import { FINAL_TASK_STATES, TASK_STATES, TASK_TIMEOUT_MAX_SEC } from '../constants.js';
import { Page, Paging, Timestamp } from './common.js';
import { Presence } from './devices.js';
import { PowerAction, Vm } from '../mqtt/vm.js';
import type { Rollout } from './rollouts.js';
import { ArtifactId, TaskError, TaskOperation, TaskOutcome } from '../mqtt/tasks.js';

/**
 * `queued` (waiting in the device's outbox) → `sent` (published to the device) → `running`
 * (the agent journaled it and started) → `succeeded | failed | cancelled | timed_out`.
 * A task may skip states (a queued task can be cancelled or time out before it is sent).
 */
export const TaskState = Type.Union([
  Type.Literal('queued'),
  Type.Literal('sent'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('timed_out'),
]);
export type TaskState = Static<typeof TaskState>;
TASK_STATES satisfies readonly TaskState[];
FINAL_TASK_STATES satisfies readonly TaskState[];

export const Task = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  /**
   * What people read instead of the ids, as they were when the task was created (written into
   * the task row then: docs/tasks.md#names). `vmName` is the VM's name on the device then, or
   * the new VM's name for `vm.create` and a named `vm.deploy`, else the result's; the artifact's
   * name and version for operations that name one. Absent when not known (older tasks).
   */
  deviceName: Type.Optional(Type.String()),
  vmName: Type.Optional(Type.String()),
  artifactName: Type.Optional(Type.String()),
  artifactVersion: Type.Optional(Type.String()),
  kind: Type.String(),
  operation: TaskOperation,
  /** The VM the task acts on; for `vm.create`, the new VM's id once it succeeded. */
  vmId: Type.Union([Type.String(), Type.Null()]),
  state: TaskState,
  progress: Type.Object({ pct: Type.Integer(), message: Type.Union([Type.String(), Type.Null()]) }),
  /** An operator asked to cancel; the device has not answered yet. */
  cancelRequested: Type.Boolean(),
  error: Type.Union([TaskError, Type.Null()]),
  /** The VM as the device reported it after the operation. */
  vm: Type.Union([Vm, Type.Null()]),
  /** The task this one retries, and which attempt this is (1 for an original). */
  retryOf: Type.Union([Type.String(), Type.Null()]),
  attempt: Type.Integer({ minimum: 1 }),
  createdBy: Type.String(),
  createdAt: Timestamp,
  sentAt: Type.Union([Timestamp, Type.Null()]),
  startedAt: Type.Union([Timestamp, Type.Null()]),
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  deadlineAt: Timestamp,
  /**
   * A result that arrived after the task was already final (typically after `timed_out`): kept
   * for the record; it does not change the state.
   */
  lateResult: Type.Union([
    Type.Object({ outcome: TaskOutcome, at: Timestamp, error: Type.Optional(TaskError) }),
    Type.Null(),
  ]),
});
export type Task = Static<typeof Task>;
export const TaskPage = Page(Task);

export const TaskQuery = Type.Object(
  {
    ...Paging,
    deviceId: Type.Optional(Type.String({ maxLength: 64 })),
    /** A device id or its exact current name (every device of that name). */
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    vmId: Type.Optional(Type.String({ maxLength: 128 })),
    state: Type.Optional(TaskState),
    kind: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: false },
);
export type TaskQuery = Static<typeof TaskQuery>;


/** Query options of every call that creates a task. */
export const TaskOptions = Type.Object(
  {
    /** Seconds from creation until the task times out, wherever it is. Default 24 h. */
    timeoutSec: Type.Optional(Type.Integer({ minimum: 1, maximum: TASK_TIMEOUT_MAX_SEC })),
    /** Queue the task even if the device's last report says it cannot succeed (a limit, a taken name, a VM that is on). Default false. */
    force: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type TaskOptions = Static<typeof TaskOptions>;

export const PowerRequest = Type.Object({ action: PowerAction }, { additionalProperties: false });
export type PowerRequest = Static<typeof PowerRequest>;

/** `POST /devices/{id}/agent-update`: the `agent.update` operation's fields. */
export const AgentUpdateRequest = Type.Object(
  {
    artifactId: ArtifactId,
    /** Seconds the new version has to reconnect and report healthy before it is rolled back. Default 120. */
    healthySec: Type.Optional(Type.Integer({ minimum: 10, maximum: 3600 })),
  },
  { additionalProperties: false },
);
export type AgentUpdateRequest = Static<typeof AgentUpdateRequest>;

/** `POST /devices/{id}/patch`: the `device.patch` operation's fields. */
export const DevicePatchRequest = Type.Object({ artifactId: ArtifactId }, { additionalProperties: false });
export type DevicePatchRequest = Static<typeof DevicePatchRequest>;

/** `POST /tasks`: one operation on many devices (a list of ids, every device with a tag, or a group's members: exactly one). */
export const BulkTaskRequest = Type.Object(
  {
    operation: TaskOperation,
    deviceIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** Every device that is a member of this group now. */
    groupId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    timeoutSec: Type.Optional(Type.Integer({ minimum: 1, maximum: TASK_TIMEOUT_MAX_SEC })),
  },
  { additionalProperties: false },
);
export type BulkTaskRequest = Static<typeof BulkTaskRequest>;

export const BulkTaskResponse = Type.Object({
  count: Type.Integer({ minimum: 0 }),
  taskIds: Type.Array(Type.String()),
});
export type BulkTaskResponse = Static<typeof BulkTaskResponse>;

/**
 * `GET /api/v1/events` (server-sent events). The SSE `event:` field is the `type`; `data:` is
 * the JSON below. `id:` is an opaque string (do not parse or compare it): a client that
 * reconnects sends the last one it saw back as `Last-Event-ID`, and gets what it missed, or a
 * `reset` event when the manager cannot replay that far (reload whatever is shown).
 * - `task`: a task changed (created, sent, progress, final, cancel requested).
 * - `device`: a device's presence changed, or it was enrolled or decommissioned.
 * - `vms`: a device's VM inventory changed.
 * - `rollout`: a rollout's state or progress changed (the whole rollout with its counts).
 */
export const DeviceEvent = Type.Object({
  id: Type.String(),
  presence: Presence,
  lastSeenAt: Type.Union([Timestamp, Type.Null()]),
  removed: Type.Optional(Type.Boolean()),
});
export type DeviceEvent = Static<typeof DeviceEvent>;

/** `GET /events` filters: one task's events, or one device's (tasks, presence and VMs). */
export const EventsQuery = Type.Object(
  {
    deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    taskId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** One rollout's progress events only. */
    rolloutId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

export type LiveEvent =
  | { type: 'task'; task: Task }
  | { type: 'device'; device: DeviceEvent }
  | { type: 'vms'; deviceId: string; vms: Vm[] }
  | { type: 'rollout'; rollout: Rollout };
