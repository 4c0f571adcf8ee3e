import Type, { type Static } from 'typebox';
import { ArtifactManifest } from '../api/artifacts.js';
import { PowerAction, Vm, VmName, VmPatch, VmSpec } from './vm.js';

// ---------------------------------------------------------------------------------------------
// Tasks on the wire. Every change on a device is a task: the manager sends `TaskCommand`s on
// `cmd/task`, the agent answers with `TaskProgress` on `task/progress` and one `TaskResult` on
// `task/result`, and the manager acknowledges stored results with `TaskAck` on `cmd/task-ack`.
// Delivery is at least once in both directions; the agent's journal and the manager's state
// machine make the effect happen once. The full rules are in docs/tasks.md.
// ---------------------------------------------------------------------------------------------

/** Task ids are made by the manager: `tsk_` + 26 characters, sortable by creation time. */
export const TaskId = Type.String({ minLength: 8, maxLength: 64, pattern: '^tsk_[0-9a-z]+$' });
export type TaskId = Static<typeof TaskId>;

/** A VM id as the device's hypervisor knows it (see `Vm.id`). */
const VmId = Type.String({ minLength: 1, maxLength: 128 });

/**
 * An artifact id as the manager makes them: `art_` + base64url characters (16 of them today).
 * Safe in file names on the device, where the agent keeps `<id>.part`.
 */
export const ArtifactId = Type.String({ minLength: 8, maxLength: 64, pattern: '^art_[0-9A-Za-z_-]+$' });
export type ArtifactId = Static<typeof ArtifactId>;

/**
 * Where a `vm.deploy` takes its OVA from.
 * - `file`: a path on the device (absolute; the agent reads it, the manager never sees the file).
 * - `artifact`: an `ova` artifact in the manager's store, which the agent downloads (resuming
 *   after cuts) and verifies against its signed manifest before it deploys (docs/artifacts.md).
 */
export const DeploySource = Type.Union([
  Type.Object(
    { kind: Type.Literal('file'), path: Type.String({ minLength: 2, maxLength: 4096, pattern: '^/' }) },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal('artifact'), artifactId: ArtifactId }, { additionalProperties: false }),
]);
export type DeploySource = Static<typeof DeploySource>;

/** `vm.deploy`: a VM from an OVA, powered off. `name` defaults to the OVF's virtual system name. */
export const VmDeploy = Type.Object({ name: Type.Optional(VmName), source: DeploySource }, { additionalProperties: false });
export type VmDeploy = Static<typeof VmDeploy>;

/** What a task does on the device. One variant per operation; `kind` is also the REST `kind`. */
export const TaskOperation = Type.Union([
  Type.Object({ kind: Type.Literal('vm.create'), spec: VmSpec }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('vm.power'), vmId: VmId, action: PowerAction }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('vm.update'), vmId: VmId, patch: VmPatch }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('vm.delete'), vmId: VmId }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('vm.deploy'), name: Type.Optional(VmName), source: DeploySource }, { additionalProperties: false }),
  /** Applies a `patch` artifact to the device through its driver (where the hypervisor supports it). */
  Type.Object({ kind: Type.Literal('device.patch'), artifactId: ArtifactId }, { additionalProperties: false }),
  /**
   * Installs an `agent` artifact as the device's agent, restarts into it, and rolls back to the
   * running version by itself unless the new one reconnects and reports healthy within
   * `healthySec` (default 120).
   */
  Type.Object(
    { kind: Type.Literal('agent.update'), artifactId: ArtifactId, healthySec: Type.Optional(Type.Integer({ minimum: 10, maximum: 3600 })) },
    { additionalProperties: false },
  ),
]);
export type TaskOperation = Static<typeof TaskOperation>;
export type TaskKind = TaskOperation['kind'];
export const TASK_KINDS = ['vm.create', 'vm.power', 'vm.update', 'vm.delete', 'vm.deploy', 'device.patch', 'agent.update'] as const satisfies readonly TaskKind[];

/** The artifacts an operation uses (none for most): the manager grants each one to the device when it sends the task. */
export function artifactIdsOf(operation: TaskOperation): string[] {
  switch (operation.kind) {
    case 'vm.deploy':
      return operation.source.kind === 'artifact' ? [operation.source.artifactId] : [];
    case 'device.patch':
    case 'agent.update':
      return [operation.artifactId];
    default:
      return [];
  }
}

/**
 * What the device needs to fetch one artifact a task uses: the signed manifest (checked with
 * the key pinned at enrollment) and a download URL signed for this device, relative to the
 * manager's URL (`dl/…`, resolved like the agent's other HTTP calls). Made fresh each time the
 * task is sent, so a resend after a URL expired carries a new one.
 */
export const ArtifactGrant = Type.Object(
  {
    manifest: ArtifactManifest,
    /** base64 Ed25519 signature over the canonical JSON of `manifest`. */
    signature: Type.String({ minLength: 1, maxLength: 256 }),
    keyId: Type.String({ minLength: 1, maxLength: 64 }),
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type ArtifactGrant = Static<typeof ArtifactGrant>;

/**
 * `cmd/task` (manager → device, QoS 1).
 * - `run`: run this task unless it is already in the journal. `timeoutMs` is the time left until
 *   the task's deadline when the manager sent it: the agent counts it on its own clock from
 *   receipt, so a device whose clock is wrong still stops in time.
 * - `cancel`: stop the task if it is queued or running; the agent answers with a result
 *   (`cancelled`, or whatever it reached if it had already finished).
 */
export const TaskCommand = Type.Union([
  Type.Object(
    {
      type: Type.Literal('run'),
      taskId: TaskId,
      operation: TaskOperation,
      timeoutMs: Type.Integer({ minimum: 0 }),
      /** One grant per id of `artifactIdsOf(operation)`, in that order; absent when it names none. */
      artifacts: Type.Optional(Type.Array(ArtifactGrant, { maxItems: 16 })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('cancel'), taskId: TaskId }, { additionalProperties: false }),
]);
export type TaskCommand = Static<typeof TaskCommand>;

/**
 * `task/progress` (device → manager, QoS 1). The first one for a task (pct 0) tells the manager
 * the agent has journaled it and started; later ones are coalesced by the agent (at most a few
 * per second). `pct` never goes down within one task.
 */
export const TaskProgress = Type.Object(
  {
    taskId: TaskId,
    pct: Type.Integer({ minimum: 0, maximum: 100 }),
    message: Type.Optional(Type.String({ maxLength: 255 })),
    at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type TaskProgress = Static<typeof TaskProgress>;

/** How a task ended on the device. `timed_out`: the agent's own deadline passed. */
export const TaskOutcome = Type.Union([
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('timed_out'),
]);
export type TaskOutcome = Static<typeof TaskOutcome>;

/**
 * Why a task failed. `code` is machine-readable: a driver code (`not_found`, `invalid_state`,
 * `invalid_spec`, `no_space`, `unavailable`, `host_error`) or an agent code (`unsupported`,
 * `internal`); `message` is for people and names the object ("no VM vm-12 on this host").
 */
export const TaskError = Type.Object(
  {
    code: Type.String({ minLength: 1, maxLength: 64 }),
    message: Type.String({ maxLength: 2048 }),
  },
  { additionalProperties: false },
);
export type TaskError = Static<typeof TaskError>;

/**
 * `task/result` (device → manager, QoS 1). Sent when the task ends, and again after every
 * reconnect (and every `resendAfter`) until a `TaskAck` names it.
 */
export const TaskResult = Type.Object(
  {
    taskId: TaskId,
    outcome: TaskOutcome,
    error: Type.Optional(TaskError),
    /** The VM after the operation (create, power, update). */
    vm: Type.Optional(Vm),
    finishedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type TaskResult = Static<typeof TaskResult>;

/** `cmd/task-ack` (manager → device, QoS 1): these results are stored; stop re-sending them. */
export const TaskAck = Type.Object(
  { taskIds: Type.Array(TaskId, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);
export type TaskAck = Static<typeof TaskAck>;
