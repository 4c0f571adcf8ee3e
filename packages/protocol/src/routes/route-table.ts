/**
 * The REST API, each route once: method, path under `/api/v1`, the least role that may call it,
 * what its params, query, body and answer are, and its documentation. The manager registers
 * its routes from this table (and the OpenAPI document follows from them); `@pallas/client`
 * is typed from it and builds its URLs with it; the role matrix test reads the roles here.
 * A new route is an entry here and a handler in the manager; the client has it at once.
 *
 * Schemas are named, not embedded (`body: 'VmSpec'`, looked up in `schemas.ts`): the table is
 * then plain data of a few kB that the web console can carry, while TypeBox and the schemas
 * (~120 kB) stay where they validate — in the manager. Names are checked by the compiler.
 */
import type { RouteSpec } from './route-types.js';

const TASK = { query: 'TaskOptions', status: 202, response: 'Task' } as const;

export const ROUTES = {
  // --- sessions
  login: {
    method: 'POST', path: '/auth/login', role: 'public', tag: 'auth',
    summary: 'Log in; returns a bearer token, or with `cookie: true` (the console) sets an HttpOnly session cookie instead',
    body: 'LoginRequest', status: 200, response: 'LoginResponse',
  },
  logout: {
    method: 'POST', path: '/auth/logout', role: 'viewer', tag: 'auth', audit: 'logout',
    summary: 'End this session (and clear the console cookie)', status: 204,
  },
  me: {
    method: 'GET', path: '/auth/me', role: 'viewer', tag: 'auth',
    summary: 'The logged-in user (with the role this credential acts with)', status: 200, response: 'User',
  },

  // --- users: admins manage everyone; anyone may read themselves and change their own password
  listUsers: {
    method: 'GET', path: '/users', role: 'admin', tag: 'users', summary: 'List users (admin)',
    query: 'PageQuery', status: 200, response: 'UserPage',
  },
  createUser: {
    method: 'POST', path: '/users', role: 'admin', tag: 'users', audit: 'user.create', summary: 'Create a user (admin)',
    body: 'CreateUser', status: 201, response: 'User',
  },
  getUser: {
    method: 'GET', path: '/users/:id', role: 'viewer', tag: 'users', summary: 'Get a user (admin, or yourself)',
    params: 'IdParam', status: 200, response: 'User',
  },
  updateUser: {
    method: 'PATCH', path: '/users/:id', role: 'viewer', tag: 'users', audit: 'user.update',
    summary: 'Change role or password (admin); change your own password (anyone, with currentPassword)',
    params: 'IdParam', body: 'UpdateUser', status: 200, response: 'User',
  },
  deleteUser: {
    method: 'DELETE', path: '/users/:id', role: 'admin', tag: 'users', audit: 'user.delete',
    summary: 'Delete a user and their sessions and API tokens (admin)', params: 'IdParam', status: 204,
  },

  // --- API tokens for automation: each user manages their own; admins see and revoke anyone's
  listApiTokens: {
    method: 'GET', path: '/api-tokens', role: 'viewer', tag: 'api-tokens',
    summary: "List your API tokens (admins: `all=true` for everyone's); secrets are never shown",
    query: 'ApiTokenQuery', status: 200, response: 'ApiTokenPage',
  },
  createApiToken: {
    method: 'POST', path: '/api-tokens', role: 'viewer', tag: 'api-tokens', audit: 'token.create',
    summary: 'Create an API token with at most your role; its secret is in this response only',
    body: 'CreateApiToken', status: 201, response: 'CreatedApiToken',
  },
  revokeApiToken: {
    method: 'DELETE', path: '/api-tokens/:id', role: 'viewer', tag: 'api-tokens', audit: 'token.revoke',
    summary: "Revoke an API token (yours; admins: anyone's)", params: 'IdParam', status: 204,
  },

  listAudit: {
    method: 'GET', path: '/audit', role: 'admin', tag: 'audit',
    summary: 'The audit log, newest first (admin): filter by actor, action (or prefix `user.`), target, outcome, since/until',
    query: 'AuditQuery', status: 200, response: 'AuditPage',
  },
  exportAudit: {
    method: 'GET', path: '/audit/export', role: 'admin', tag: 'audit',
    summary: 'Every audit entry the filters match, newest first, streamed as CSV (`format=csv`, the default) or a JSON array (`format=json`) (admin)',
    query: 'AuditExportQuery', status: 200, response: 'binary',
  },

  // --- devices
  listDevices: {
    method: 'GET', path: '/devices', role: 'viewer', tag: 'devices',
    summary: 'List devices (paged; filter by presence, status, name, tag, hypervisor)',
    query: 'DeviceQuery', status: 200, response: 'DevicePage',
  },
  getDevice: {
    method: 'GET', path: '/devices/:id', role: 'viewer', tag: 'devices', summary: 'Get a device with its host facts and VMs',
    params: 'IdParam', status: 200, response: 'Device',
  },
  getDeviceHistory: {
    method: 'GET', path: '/devices/:id/history', role: 'viewer', tag: 'devices',
    summary: "A device's CPU, memory and datastore use and its presence over a time range (see docs/history.md)",
    params: 'IdParam', query: 'HistoryQuery', status: 200, response: 'DeviceHistory',
  },
  updateDevice: {
    // Audited as `device.rename` or `device.update`, which the handler decides.
    method: 'PATCH', path: '/devices/:id', role: 'operator', tag: 'devices', summary: 'Rename or re-tag a device',
    params: 'IdParam', body: 'DevicePatch', status: 200, response: 'Device',
  },
  approveDevice: {
    method: 'POST', path: '/devices/:id/approve', role: 'operator', tag: 'devices', audit: 'device.approve',
    summary: 'Approve a pending device (with --require-approval): it may connect from now on',
    params: 'IdParam', status: 200, response: 'Device',
  },
  blockDevice: {
    method: 'POST', path: '/devices/:id/block', role: 'operator', tag: 'devices', audit: 'device.block',
    summary: 'Block a device: its connection is closed at once and its credential refused until unblocked',
    params: 'IdParam', status: 200, response: 'Device',
  },
  unblockDevice: {
    method: 'POST', path: '/devices/:id/unblock', role: 'operator', tag: 'devices', audit: 'device.unblock',
    summary: 'Unblock a blocked device', params: 'IdParam', status: 200, response: 'Device',
  },
  rotateDeviceCredential: {
    method: 'POST', path: '/devices/:id/rotate-credential', role: 'operator', tag: 'devices', audit: 'device.rotate-credential',
    summary: 'Send the device a new credential; the old one works until the device connects with the new one',
    params: 'IdParam', status: 200, response: 'Device',
  },
  decommissionDevice: {
    method: 'DELETE', path: '/devices/:id', role: 'operator', tag: 'devices', audit: 'device.decommission',
    summary: 'Decommission a device: its credential stops working and its agent stops', params: 'IdParam', status: 204,
  },
  updateAgent: {
    method: 'POST', path: '/devices/:id/agent-update', role: 'operator', tag: 'devices', audit: 'device.agent-update',
    summary: "Update the device's agent from an `agent` artifact: returns the task",
    description:
      'The agent downloads and checks the bundle, restarts into it under its supervisor, and rolls back to the running version by itself unless the new one reconnects and reports healthy within `healthySec` (default 120). The task succeeds once the new version has committed; it fails with `rolled_back` and the reason otherwise. See docs/agent-update.md.',
    params: 'IdParam', body: 'AgentUpdateRequest', ...TASK,
  },
  patchDeviceHost: {
    method: 'POST', path: '/devices/:id/patch', role: 'operator', tag: 'devices', audit: 'device.patch',
    summary: "Apply a `patch` artifact to the device's hypervisor: returns the task",
    description: 'Through the device driver, where the hypervisor supports it (`sim` does; `qemu` and `esxi` fail the task with `unsupported`, saying why). See docs/drivers.md.',
    params: 'IdParam', body: 'DevicePatchRequest', ...TASK,
  },

  // --- enrollment
  listEnrollmentTokens: {
    method: 'GET', path: '/enrollment-tokens', role: 'operator', tag: 'enrollment',
    summary: 'List enrollment tokens (secrets are never shown again)', query: 'PageQuery', status: 200, response: 'EnrollmentTokenPage',
  },
  createEnrollmentToken: {
    method: 'POST', path: '/enrollment-tokens', role: 'operator', tag: 'enrollment', audit: 'enrollment-token.create',
    summary: 'Create an enrollment token; its secret is in this response only',
    body: 'CreateEnrollmentToken', status: 201, response: 'CreatedEnrollmentToken',
  },
  revokeEnrollmentToken: {
    method: 'DELETE', path: '/enrollment-tokens/:id', role: 'operator', tag: 'enrollment', audit: 'enrollment-token.revoke',
    summary: 'Revoke an enrollment token', params: 'IdParam', status: 204,
  },
  enroll: {
    // Agents call it, authenticated by the enrollment token in the body.
    method: 'POST', path: '/enroll', role: 'public', tag: 'enrollment',
    summary: 'Enroll a device with an enrollment token (agents call this)', body: 'EnrollRequest', status: 200, response: 'EnrollResponse',
  },
  enrollStatus: {
    // Agents call it when the broker refused their credential, authenticated by the secret in the body.
    method: 'POST', path: '/enroll/status', role: 'public', tag: 'enrollment',
    summary: 'Whether an enrolled device\'s credential is still good (agents call this when the broker refuses them)',
    description: 'On an external broker the manager re-creates the device\'s broker client from the proven secret. 401 `credential_invalid`: the credential is gone for good.',
    body: 'EnrollStatusRequest', status: 200, response: 'EnrollStatusResponse',
  },

  // --- VMs: reads are the manager's copy of the device's inventory; every change is a task
  listVms: {
    method: 'GET', path: '/devices/:id/vms', role: 'viewer', tag: 'vms', summary: "List a device's VMs (its last reported inventory)",
    params: 'IdParam', status: 200, response: 'VmList',
  },
  createVm: {
    method: 'POST', path: '/devices/:id/vms', role: 'operator', tag: 'vms', audit: 'vm.create',
    summary: 'Create a VM (powered off): returns the task', params: 'IdParam', body: 'VmSpec', ...TASK,
  },
  deployVm: {
    method: 'POST', path: '/devices/:id/vms/deploy', role: 'operator', tag: 'vms', audit: 'vm.deploy',
    summary: 'Deploy a VM (powered off) from an OVA on the device: returns the task',
    description: "`source.path` is a file on the device, read by its agent; `name` defaults to the OVF's virtual system name.",
    params: 'IdParam', body: 'VmDeploy', ...TASK,
  },
  powerVm: {
    method: 'POST', path: '/devices/:id/vms/:vmId/power', role: 'operator', tag: 'vms', audit: 'vm.power',
    summary: 'Power a VM on, off, reset it or shut it down: returns the task', params: 'VmParams', body: 'PowerRequest', ...TASK,
  },
  updateVm: {
    method: 'PATCH', path: '/devices/:id/vms/:vmId', role: 'operator', tag: 'vms', audit: 'vm.update',
    summary: 'Rename a VM, or change its vCPUs and memory while it is off: returns the task', params: 'VmParams', body: 'VmPatch', ...TASK,
  },
  deleteVm: {
    method: 'DELETE', path: '/devices/:id/vms/:vmId', role: 'operator', tag: 'vms', audit: 'vm.delete',
    summary: 'Delete a powered-off VM and its disks: returns the task', params: 'VmParams', ...TASK,
  },

  // --- tasks
  listTasks: {
    method: 'GET', path: '/tasks', role: 'viewer', tag: 'tasks', summary: 'List tasks, newest first (filter by device, VM, state, kind)',
    query: 'TaskQuery', status: 200, response: 'TaskPage',
  },
  createBulkTask: {
    method: 'POST', path: '/tasks', role: 'operator', tag: 'tasks', audit: 'task.create',
    summary: 'Run one operation on many devices (a list of ids, every device with a tag, or the members of a group)',
    body: 'BulkTaskRequest', status: 202, response: 'BulkTaskResponse',
  },
  getTask: {
    method: 'GET', path: '/tasks/:id', role: 'viewer', tag: 'tasks', summary: 'Get a task', params: 'IdParam', status: 200, response: 'Task',
  },
  cancelTask: {
    method: 'POST', path: '/tasks/:id/cancel', role: 'operator', tag: 'tasks', audit: 'task.cancel',
    summary: 'Cancel a task (at once if queued; else the device is asked to stop it)', params: 'IdParam', status: 202, response: 'Task',
  },
  retryTask: {
    method: 'POST', path: '/tasks/:id/retry', role: 'operator', tag: 'tasks', audit: 'task.retry',
    summary: 'Retry a failed, cancelled or timed-out task as a new attempt', params: 'IdParam', status: 201, response: 'Task',
  },

  // --- groups: fixed lists or saved queries of devices
  listGroups: {
    method: 'GET', path: '/groups', role: 'viewer', tag: 'groups', summary: 'List device groups with their member counts',
    query: 'GroupListQuery', status: 200, response: 'GroupPage',
  },
  createGroup: {
    method: 'POST', path: '/groups', role: 'operator', tag: 'groups', audit: 'group.create',
    summary: 'Create a group: a fixed list of devices (`deviceIds`) or a saved query (`query`: tags, hypervisor, agent version, host build, presence, status, name pattern)',
    body: 'CreateGroup', status: 201, response: 'Group',
  },
  getGroup: {
    method: 'GET', path: '/groups/:id', role: 'viewer', tag: 'groups', summary: 'Get a group (by id or name) with its member count',
    params: 'IdParam', status: 200, response: 'Group',
  },
  updateGroup: {
    method: 'PATCH', path: '/groups/:id', role: 'operator', tag: 'groups', audit: 'group.update',
    summary: "Rename a group, or replace its device list or its query", params: 'IdParam', body: 'UpdateGroup', status: 200, response: 'Group',
  },
  deleteGroup: {
    method: 'DELETE', path: '/groups/:id', role: 'operator', tag: 'groups', audit: 'group.delete',
    summary: 'Delete a group; refused (409) while a running or paused rollout targets it', params: 'IdParam', status: 204,
  },
  listGroupMembers: {
    method: 'GET', path: '/groups/:id/devices', role: 'viewer', tag: 'groups', summary: "A group's member devices now, by name",
    params: 'IdParam', query: 'GroupListQuery', status: 200, response: 'DevicePage',
  },

  // --- rollouts: one operation to many devices in waves, with success gates and error thresholds
  listRollouts: {
    method: 'GET', path: '/rollouts', role: 'viewer', tag: 'rollouts', summary: 'List rollouts, newest first, with their progress',
    query: 'RolloutQuery', status: 200, response: 'RolloutPage',
  },
  createRollout: {
    method: 'POST', path: '/rollouts', role: 'operator', tag: 'rollouts', audit: 'rollout.create',
    summary: 'Start a rollout: one operation to a group, a tag or a list of devices, in waves (see docs/rollouts.md)',
    body: 'CreateRollout', status: 201, response: 'Rollout',
  },
  planRollout: {
    method: 'POST', path: '/rollouts/plan', role: 'viewer', tag: 'rollouts',
    summary: 'The wave sizes a rollout to these targets would have, without starting it',
    body: 'RolloutPlanRequest', status: 200, response: 'RolloutPlan',
  },
  getRollout: {
    method: 'GET', path: '/rollouts/:id', role: 'viewer', tag: 'rollouts', summary: 'Get a rollout with per-wave progress',
    params: 'IdParam', status: 200, response: 'Rollout',
  },
  listRolloutDevices: {
    method: 'GET', path: '/rollouts/:id/devices', role: 'viewer', tag: 'rollouts',
    summary: "A rollout's devices with their wave, outcome and task (filter by state, wave)",
    params: 'IdParam', query: 'RolloutDeviceQuery', status: 200, response: 'RolloutDevicePage',
  },
  pauseRollout: {
    method: 'POST', path: '/rollouts/:id/pause', role: 'operator', tag: 'rollouts', audit: 'rollout.pause',
    summary: 'Pause: no new device gets the operation; tasks already sent finish', params: 'IdParam', body: 'RolloutAction', status: 200, response: 'Rollout',
  },
  resumeRollout: {
    method: 'POST', path: '/rollouts/:id/resume', role: 'operator', tag: 'rollouts', audit: 'rollout.resume',
    summary: 'Resume a paused rollout; the error threshold counts again from here', params: 'IdParam', body: 'RolloutAction', status: 200, response: 'Rollout',
  },
  abortRollout: {
    method: 'POST', path: '/rollouts/:id/abort', role: 'operator', tag: 'rollouts', audit: 'rollout.abort',
    summary: 'Abort: queued tasks are cancelled, devices without a task are skipped; tasks already on a device finish',
    params: 'IdParam', body: 'RolloutAction', status: 200, response: 'Rollout',
  },

  // --- live events and the fleet overview
  followEvents: {
    method: 'GET', path: '/events', role: 'viewer', tag: 'events',
    summary: 'Live stream (server-sent events) of task, device and VM changes', query: 'EventsQuery', status: 200, response: 'event-stream',
  },
  fleetSummary: {
    method: 'GET', path: '/fleet/summary', role: 'viewer', tag: 'fleet',
    summary: 'Device counts by presence, hypervisor and agent version; task counts by state', status: 200, response: 'FleetSummary',
  },
  fleetHistory: {
    method: 'GET', path: '/fleet/history', role: 'viewer', tag: 'fleet',
    summary: 'Devices by presence, tasks ended by outcome, kind and error, and enrollments over a time range (see docs/history.md)',
    query: 'FleetHistoryQuery', status: 200, response: 'FleetHistory',
  },
  fleetFailingDevices: {
    method: 'GET', path: '/fleet/failing-devices', role: 'viewer', tag: 'fleet',
    summary: 'The devices with the most tasks that failed or timed out since `from` (default: the last 24 h), with their commonest error code',
    query: 'FailingDevicesQuery', status: 200, response: 'FailingDevices',
  },
  clusterStatus: {
    method: 'GET', path: '/cluster', role: 'operator', tag: 'fleet',
    summary: 'The managers sharing this database (alive or not), the broker, and which manager runs each job that must run once (docs/scale-out.md)',
    status: 200, response: 'ClusterStatus',
  },

  // --- artifacts
  signingKey: {
    method: 'GET', path: '/signing-key', role: 'viewer', tag: 'artifacts',
    summary: "The manager's Ed25519 public key that signs artifact manifests (agents pin it at enrollment)", status: 200, response: 'SigningKey',
  },
  uploadArtifact: {
    method: 'POST', path: '/artifacts', role: 'operator', tag: 'artifacts', audit: 'artifact.upload',
    summary: 'Upload an artifact: the raw bytes as the body (Content-Type: application/octet-stream), streamed to the store and hashed on the way. A cut upload is discarded; upload it again.',
    query: 'UploadArtifactQuery', body: 'binary', status: 201, response: 'SignedArtifact',
  },
  listArtifacts: {
    method: 'GET', path: '/artifacts', role: 'viewer', tag: 'artifacts', summary: 'List artifacts, newest first',
    query: 'ArtifactQuery', status: 200, response: 'ArtifactPage',
  },
  getArtifact: {
    method: 'GET', path: '/artifacts/:id', role: 'viewer', tag: 'artifacts',
    summary: "An artifact with its manifest and the manager's signature over it", params: 'IdParam', status: 200, response: 'SignedArtifact',
  },
  deleteArtifact: {
    method: 'DELETE', path: '/artifacts/:id', role: 'operator', tag: 'artifacts', audit: 'artifact.delete',
    summary: 'Delete an artifact; refused (409) while a queued, sent or running task uses it', params: 'IdParam', status: 204,
  },
  createDownloadUrl: {
    method: 'POST', path: '/artifacts/:id/download-urls', role: 'operator', tag: 'artifacts', audit: 'artifact.download-url',
    summary: 'Make a download URL signed for one device (what a task hands its agent); anyone holding it can fetch the artifact as that device until it expires',
    params: 'IdParam', body: 'CreateDownloadUrl', status: 201, response: 'DownloadUrl',
  },
  downloadArtifact: {
    method: 'GET', path: '/artifacts/:id/content', role: 'viewer', tag: 'artifacts',
    summary: "Download an artifact's bytes (Range, If-Range, ETag = SHA-256; HEAD too)", params: 'IdParam', status: 200, response: 'binary',
  },
} as const satisfies Record<string, RouteSpec>;

export type Routes = typeof ROUTES;
export type RouteName = keyof Routes;

/** Every route name, in table order. */
export const ROUTE_NAMES = Object.keys(ROUTES) as RouteName[];
