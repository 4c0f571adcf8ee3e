/**
 * Table shapes as Kysely sees them. Timestamps are ISO-8601 UTC text and booleans are
 * 0/1 integers so that the same queries and results hold on SQLite and PostgreSQL.
 * JSON documents (host facts, VM inventory) are text, parsed at the service edge.
 */
export interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  created_at: string;
  updated_at: string;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  kind: string;
  name: string | null;
  created_at: string;
  expires_at: string;
}

export interface EnrollmentTokensTable {
  id: string;
  name: string;
  token_hash: string;
  expires_at: string;
  max_uses: number;
  uses: number;
  revoked: number;
  created_at: string;
  created_by: string;
}

export interface DevicesTable {
  id: string;
  name: string;
  secret_hash: string;
  presence: string;
  last_seen_at: string | null;
  enrolled_at: string;
  updated_at: string;
  enrollment_token_id: string | null;
  hypervisor_kind: string | null;
  agent_version: string | null;
  facts: string | null;
  vms: string | null;
  status_seq: number;
  /** `active`, `pending` (awaiting approval) or `blocked`. */
  status: string;
  /** The new credential of a rotation not yet confirmed by a connection. */
  pending_secret_hash: string | null;
  /** The key of the device's first enrollment, until it re-enrolls with its credential (013). */
  enrollment_key_hash: string | null;
  /** External broker only: the device's live broker username; null = the device id (008). */
  mqtt_username: string | null;
  /** External broker only: the username of a rotation's new credential, until confirmed (008). */
  pending_mqtt_username: string | null;
  /** JSON array of flags, e.g. `credential_clone_suspected`. */
  flags: string | null;
  last_address: string | null;
}

export interface DeviceTagsTable {
  device_id: string;
  tag: string;
}

/** One task: an operation on one device, and how far it got (see docs/tasks.md). */
export interface TasksTable {
  /** `tsk_…`, sortable by creation time: the outbox sends each device's tasks in id order. */
  id: string;
  device_id: string;
  kind: string;
  /** The `TaskOperation` as JSON. */
  operation: string;
  vm_id: string | null;
  state: string;
  progress_pct: number;
  progress_message: string | null;
  cancel_requested: number;
  error_code: string | null;
  error_message: string | null;
  /** The VM as the device reported it in the result, JSON. */
  result_vm: string | null;
  /** A result that came after the task was final, JSON `{outcome, at, error?}`. */
  late_result: string | null;
  retry_of: string | null;
  attempt: number;
  created_by: string;
  created_at: string;
  sent_at: string | null;
  /** The manager instance that published the task last (several managers: docs/scale-out.md). */
  sent_by: string | null;
  started_at: string | null;
  finished_at: string | null;
  deadline_at: string;
  updated_at: string;
  /** Names as they were when the task was created (migration 012; null before it). */
  device_name: string | null;
  vm_name: string | null;
  artifact_name: string | null;
  artifact_version: string | null;
}

/** One audited action; see services/audit. `detail` is JSON and never holds a secret. */
export interface AuditLogTable {
  /** `aud_…`, sortable by time (newest first is `ORDER BY id DESC`). */
  id: string;
  at: string;
  actor_kind: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target_kind: string | null;
  target_id: string | null;
  target_name: string | null;
  outcome: string;
  ip: string | null;
  detail: string | null;
}

/** A named API token for automation; only the hash of its secret is kept. */
export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  user_id: string;
  /** At most the owner's role when created; the owner's current role caps it at use. */
  role: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A complete artifact upload; the bytes are in the artifact store under the same id. */
export interface ArtifactsTable {
  /** `art_…` */
  id: string;
  kind: string;
  name: string;
  version: string;
  /** bigint: PostgreSQL's driver returns it as a string, hence Number() at the service edge. */
  size: number | string;
  sha256: string;
  /** base64 Ed25519 signature of the canonical manifest. */
  signature: string;
  key_id: string;
  created_at: string;
  created_by: string;
}

/** A running manager (docs/scale-out.md); times are ms by the database's clock. */
export interface ManagerInstancesTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  url: string | null;
  broker: string;
  keys_fingerprint: string;
  /** bigint: PostgreSQL's driver returns it as a string. */
  started_ms: number | string;
  heartbeat_ms: number | string;
}

/** A named claim on periodic work, held until `expires_ms` unless renewed. */
export interface LeasesTable {
  name: string;
  holder: string;
  expires_ms: number | string;
}

/** A live event too large for a NOTIFY, parked for the other managers to read. */
export interface RelayedEventsTable {
  id: string;
  payload: string;
  created_ms: number | string;
}

/** Login attempts per account or address (services/auth/login-throttle.ts). */
export interface LoginThrottleTable {
  /** `a:<lower-case user name>` or `i:<client address>`. */
  throttle_key: string;
  /** Attempts counted in the current window (each counted before its password is checked). */
  failures: number;
  window_start: string;
  /** Until when attempts are refused; the epoch when not locked. */
  locked_until: string;
}

/** A named set of devices: a fixed list (`device_group_members`) or a saved query. */
export interface DeviceGroupsTable {
  /** `grp_…` */
  id: string;
  name: string;
  description: string | null;
  kind: string;
  /** The `GroupQuery` as JSON, for kind `query`. */
  query: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface DeviceGroupMembersTable {
  group_id: string;
  device_id: string;
}

/** A staged rollout (docs/rollouts.md). */
export interface RolloutsTable {
  /** `rol_…`, sortable by creation. */
  id: string;
  name: string;
  state: string;
  pause_reason: string | null;
  operation_kind: string;
  operation: string;
  target: string;
  membership: string;
  policy: string;
  current_wave: number;
  wave_count: number;
  base_failed: number;
  base_finished: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  deadline_at: string;
}

export interface RolloutWavesTable {
  rollout_id: string;
  wave: number;
  size: number;
  started_at: string | null;
  gate_met_at: string | null;
}

/** One device of a rollout: which wave, how far, which task carries it now. */
export interface RolloutDevicesTable {
  rollout_id: string;
  device_id: string;
  wave: number;
  state: string;
  task_id: string | null;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  verify_until: string | null;
  updated_at: string;
  finished_at: string | null;
}

/** Resource samples of one device in one bucket (010; docs/history.md). */
export interface DeviceHistoryTable {
  device_id: string;
  /** Bucket length in minutes. */
  resolution: number;
  /** Bucket start, minutes since the epoch. */
  bucket: number;
  samples: number;
  cpu_min: number | null;
  cpu_max: number | null;
  cpu_sum: number | null;
  mem_used_min: number | null;
  mem_used_max: number | null;
  mem_used_sum: number | null;
  mem_total: number | null;
  ds_used_min: number | null;
  ds_used_max: number | null;
  ds_used_sum: number | null;
  ds_capacity: number | null;
}

/** A presence transition: the device entered `state` at `at` (010). */
export interface DevicePresenceHistoryTable {
  device_id: string;
  at: string;
  state: string;
}

/** One fleet series' value in one bucket (010). */
export interface FleetHistoryTable {
  resolution: number;
  metric: string;
  bucket: number;
  label: string;
  min: number;
  max: number;
  sum: number;
  samples: number;
}

/** How far a history job got, in minutes since the epoch (010). */
export interface HistoryMarksTable {
  name: string;
  bucket: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  enrollment_tokens: EnrollmentTokensTable;
  devices: DevicesTable;
  device_tags: DeviceTagsTable;
  tasks: TasksTable;
  audit_log: AuditLogTable;
  api_tokens: ApiTokensTable;
  artifacts: ArtifactsTable;
  manager_instances: ManagerInstancesTable;
  leases: LeasesTable;
  relayed_events: RelayedEventsTable;
  login_throttle: LoginThrottleTable;
  device_groups: DeviceGroupsTable;
  device_group_members: DeviceGroupMembersTable;
  rollouts: RolloutsTable;
  rollout_waves: RolloutWavesTable;
  rollout_devices: RolloutDevicesTable;
  device_history: DeviceHistoryTable;
  device_presence_history: DevicePresenceHistoryTable;
  fleet_history: FleetHistoryTable;
  history_marks: HistoryMarksTable;
}

