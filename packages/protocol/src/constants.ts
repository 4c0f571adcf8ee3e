/** Version of the Pallas programs built from this repository. */
export const PALLAS_VERSION = '0.1.0';

// ---------------------------------------------------------------------------------------------
// Limits and codes of the contract as plain values, without the schema library: the schemas
// are built from them, and the CLI and the web console check input and explain results with
// the same numbers (`@pallas/protocol/constants` keeps TypeBox out of the browser bundle).
// ---------------------------------------------------------------------------------------------

/**
 * What a VM spec or patch may ask for (the `VmSpec`/`VmPatch` schemas are built from this).
 * The narrowest limits that all three hypervisors (ESXi, QEMU, sim) honour:
 * - `name`: 80 characters is ESXi's display-name limit; the character set is safe as a QEMU
 *   `-name`, a file name on a datastore and a URL path segment.
 * - `vcpus`: 128 is ESXi 7's per-VM limit on the hardware versions edge hosts run.
 * - `memoryMB`: MiB, 64 MiB to 1 TiB.
 * - `diskGB`: decimal GB, more than 0 and at most 65,536 (64 TB).
 */
export const VM_LIMITS = {
  name: { minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9._-]([A-Za-z0-9._ -]*[A-Za-z0-9._-])?$' },
  vcpus: { minimum: 1, maximum: 128 },
  memoryMB: { minimum: 64, maximum: 1_048_576 },
  diskGB: { exclusiveMinimum: 0, maximum: 65_536 },
} as const;

/**
 * The longest name each resource takes, in characters (the schemas are built from these).
 * A longer name is refused with 400 `invalid_request` naming the field and the limit; the
 * manager never shortens a name, and neither do the CLI and the console.
 */
export const NAME_LIMITS = {
  device: 255,
  vm: VM_LIMITS.name.maxLength,
  artifact: 128,
  group: 128,
  rollout: 128,
  apiToken: 128,
  enrollmentToken: 255,
  username: 64,
} as const;

/** Paged listings: `limit` defaults to 50 and is at most 1000. */
export const PAGE_LIMITS = { default: 50, max: 1000 } as const;

/** Default and bounds of a task's deadline, counted from its creation (queue time included). */
export const TASK_TIMEOUT_DEFAULT_SEC = 24 * 3600;
export const TASK_TIMEOUT_MAX_SEC = 30 * 24 * 3600;

/** A device's presence as the manager judges it (the `Presence` schema is built from this). */
export const PRESENCES = ['online', 'unresponsive', 'offline'] as const;

/** Roles, least to most: each may do everything the one before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;

export const TASK_STATES = ['queued', 'sent', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export const FINAL_TASK_STATES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export const ACTIVE_TASK_STATES = ['queued', 'sent', 'running'] as const;

/** Whether a task in this state will change no more. */
export function isFinalTaskState(state: string): state is (typeof FINAL_TASK_STATES)[number] {
  return (FINAL_TASK_STATES as readonly string[]).includes(state);
}

export const ARTIFACT_KINDS = ['ova', 'patch', 'agent'] as const;

/**
 * The codes a failed, cancelled or timed-out task carries in `error.code`, and what each means
 * for the operator. The agent fails tasks with the driver, download and update codes; the
 * manager sets `timed_out`, `cancelled` and `device_removed` itself. A newer agent may send a
 * code missing here: callers show the message, which always says what happened.
 */
export const TASK_ERROR_CODES = {
  // The hypervisor driver's (docs/drivers.md).
  not_found: 'no such VM on the device (never existed, or deleted meanwhile)',
  invalid_state: "the VM's power state forbids it (e.g. changing vCPUs of a running VM)",
  invalid_spec: 'the spec does not fit this host (a duplicate name, or too large)',
  no_space: 'not enough datastore space or free memory on the device',
  unavailable: 'the hypervisor could not be reached; retrying later may work',
  host_error: 'the hypervisor failed the operation for a reason of its own',
  // The agent's.
  unsupported: "this device's driver or agent cannot do it",
  internal: 'the agent failed unexpectedly; its log says more',
  // Artifact downloads (docs/artifacts.md).
  artifact_untrusted: "the agent has no pinned signing key (it enrolled before artifacts)",
  artifact_invalid: 'the artifact does not match its signed manifest, or is of the wrong kind',
  artifact_forbidden: 'the manager refused the download URL (expired, or not for this device)',
  artifact_not_found: 'the artifact is gone from the manager',
  artifact_unavailable: 'the artifact could not be downloaded',
  // Agent self-update (docs/agent-update.md).
  invalid_artifact: 'the agent bundle is not usable',
  rolled_back: 'the new agent version did not report healthy in time and was rolled back',
  // The manager's.
  timed_out: "the task's deadline passed before the device reported a result",
  cancelled: 'cancelled before the device started it',
  device_removed: 'the device was decommissioned',
} as const;
export type TaskErrorCode = keyof typeof TASK_ERROR_CODES;

/**
 * Whether running the same operation again can help, by error code (docs/tasks.md#retry): yes
 * where the cause may pass by itself or can be fixed on the device without changing the
 * request (a busy or unreachable hypervisor, space freed, a VM powered off meanwhile, a
 * deadline); no where the request itself is wrong or its object is gone. The console offers
 * Retry only for `true` and for codes this version does not know; the API retries any final task.
 */
export const TASK_ERROR_RETRY: Record<TaskErrorCode, boolean> = {
  not_found: false,
  invalid_state: true,
  invalid_spec: false,
  no_space: true,
  unavailable: true,
  host_error: true,
  unsupported: false,
  internal: true,
  artifact_untrusted: false,
  artifact_invalid: false,
  artifact_forbidden: true,
  artifact_not_found: false,
  artifact_unavailable: true,
  invalid_artifact: false,
  rolled_back: true,
  timed_out: true,
  cancelled: true,
  device_removed: false,
};

/** True when a retry of a task that ended with this code can help (unknown codes: true). */
export function retryCanHelp(code: string): boolean {
  return Object.hasOwn(TASK_ERROR_RETRY, code) ? TASK_ERROR_RETRY[code as TaskErrorCode] : true;
}

/** What a task error code means, or undefined for a code this version does not know. */
export function explainTaskError(code: string): string | undefined {
  return Object.hasOwn(TASK_ERROR_CODES, code) ? TASK_ERROR_CODES[code as TaskErrorCode] : undefined;
}

/**
 * The codes of REST errors (`{error: {code, message}}`), each with its HTTP status. The
 * manager raises only these; clients branch on the code, never on the message.
 */
export const API_ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  enrollment_token_invalid: 401,
  /** POST /enroll/status: the device's credential is not (or no longer) valid; the agent gives it up. */
  credential_invalid: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  device_id_conflict: 409,
  device_state_conflict: 409,
  task_final: 409,
  /** A request body that did not arrive in time: not complete within bodyTimeoutSec, or an upload slower than uploadMinBytes per uploadWindowSec. The connection is closed after it. */
  request_timeout: 408,
  payload_too_large: 413,
  /** An upload that is not what its kind must be (docs/artifacts.md#what-each-kind-must-be). */
  invalid_artifact: 422,
  /** A VM operation the device's last report says cannot fit: more vCPUs, memory or disk than the host has, an unknown network (docs/tasks.md#checks-before-queuing). */
  exceeds_host: 422,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;
export * from './rollout-plan.js';
