import type {
  ApiToken, Artifact, ArtifactQuery, AuditEntry, AuditQuery, CreateApiToken, CreatedApiToken, CreatedEnrollmentToken,
  CreateEnrollmentToken, CreateUser, Device, DevicePatch, DeviceQuery, EnrollmentToken, FleetSummary, LoginResponse,
  PageOf, PowerAction, Task, TaskQuery, UpdateUser, User, Vm, VmDeploy, VmPatch, VmSpec,
} from '@pallas/protocol';
import { queryString, request } from './client.js';

// Every REST call the console makes, typed with the protocol's own shapes (type imports only:
// none of the protocol's runtime code is bundled).

const id = encodeURIComponent;

export const authApi = {
  // `cookie: true`: the manager keeps the session in an HttpOnly cookie this script never sees.
  login: (username: string, password: string) => request<LoginResponse>('POST', '/auth/login', { username, password, cookie: true }),
  logout: () => request<void>('POST', '/auth/logout'),
  me: () => request<User>('GET', '/auth/me'),
};

export const fleetApi = {
  summary: (signal?: AbortSignal) => request<FleetSummary>('GET', '/fleet/summary', undefined, signal ? { signal } : {}),
};

export const devicesApi = {
  list: (query: DeviceQuery, signal?: AbortSignal) =>
    request<PageOf<Device>>('GET', `/devices${queryString({ ...query })}`, undefined, signal ? { signal } : {}),
  get: (deviceId: string) => request<Device>('GET', `/devices/${id(deviceId)}`),
  patch: (deviceId: string, patch: DevicePatch) => request<Device>('PATCH', `/devices/${id(deviceId)}`, patch),
  decommission: (deviceId: string) => request<void>('DELETE', `/devices/${id(deviceId)}`),
  /** Device security (docs/security.md): approve a pending device, block, unblock. */
  setStatus: (deviceId: string, action: 'approve' | 'block' | 'unblock') => request<Device>('POST', `/devices/${id(deviceId)}/${action}`),
  rotateCredential: (deviceId: string) => request<Device>('POST', `/devices/${id(deviceId)}/rotate-credential`),
};

export const vmsApi = {
  create: (deviceId: string, spec: VmSpec) => request<Task>('POST', `/devices/${id(deviceId)}/vms`, spec),
  deploy: (deviceId: string, body: VmDeploy) => request<Task>('POST', `/devices/${id(deviceId)}/vms/deploy`, body),
  power: (deviceId: string, vmId: string, action: PowerAction) =>
    request<Task>('POST', `/devices/${id(deviceId)}/vms/${id(vmId)}/power`, { action }),
  update: (deviceId: string, vmId: string, patch: VmPatch) => request<Task>('PATCH', `/devices/${id(deviceId)}/vms/${id(vmId)}`, patch),
  remove: (deviceId: string, vmId: string) => request<Task>('DELETE', `/devices/${id(deviceId)}/vms/${id(vmId)}`),
};

export const tasksApi = {
  list: (query: TaskQuery, signal?: AbortSignal) =>
    request<PageOf<Task>>('GET', `/tasks${queryString({ ...query })}`, undefined, signal ? { signal } : {}),
  get: (taskId: string) => request<Task>('GET', `/tasks/${id(taskId)}`),
  cancel: (taskId: string) => request<Task>('POST', `/tasks/${id(taskId)}/cancel`),
  retry: (taskId: string) => request<Task>('POST', `/tasks/${id(taskId)}/retry`),
};

export const usersApi = {
  list: () => request<PageOf<User>>('GET', '/users?limit=1000'),
  create: (user: CreateUser) => request<User>('POST', '/users', user),
  update: (userId: string, patch: UpdateUser) => request<User>('PATCH', `/users/${id(userId)}`, patch),
  remove: (userId: string) => request<void>('DELETE', `/users/${id(userId)}`),
};

export const tokensApi = {
  list: () => request<PageOf<EnrollmentToken>>('GET', '/enrollment-tokens?limit=1000'),
  create: (body: CreateEnrollmentToken) => request<CreatedEnrollmentToken>('POST', '/enrollment-tokens', body),
  revoke: (tokenId: string) => request<void>('DELETE', `/enrollment-tokens/${id(tokenId)}`),
};

export const artifactsApi = {
  list: (query: ArtifactQuery, signal?: AbortSignal) =>
    request<PageOf<Artifact>>('GET', `/artifacts${queryString({ ...query })}`, undefined, signal ? { signal } : {}),
  remove: (artifactId: string) => request<void>('DELETE', `/artifacts/${id(artifactId)}`),
  // Upload is not here: it streams with XMLHttpRequest for its progress events (lib/upload.ts).
};

export const auditApi = {
  list: (query: AuditQuery, signal?: AbortSignal) =>
    request<PageOf<AuditEntry>>('GET', `/audit${queryString({ ...query })}`, undefined, signal ? { signal } : {}),
};

export const apiTokensApi = {
  list: () => request<PageOf<ApiToken>>('GET', '/api-tokens?limit=1000'),
  create: (body: CreateApiToken) => request<CreatedApiToken>('POST', '/api-tokens', body),
  revoke: (tokenId: string) => request<void>('DELETE', `/api-tokens/${id(tokenId)}`),
};

export type { Vm };
