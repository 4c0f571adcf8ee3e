/**
 * Access control of every route: the matrix walks each route Fastify registered (a route
 * without an entry here fails the test) × each kind of caller (anonymous; viewer, operator and
 * admin sessions; API tokens of each role) and checks 401 / 403 / allowed. Then object-level
 * rules: users reaching other users' objects, role escalation, API token lifecycle, the
 * console's cookie and CSRF checks.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { API_PREFIX, ROUTES, ROUTE_NAMES, fillPath, type ApiToken, type AuditEntry, type CreatedApiToken, type PageOf, type Role, type RouteName, type Task, type User } from '@pallas/protocol';
import { ADMIN_PASSWORD, Api, createEnrollmentToken, managerDatabase, patchFile, tempDir, waitFor, type ManagerDatabase } from '@pallas/testkit';
import { startManager, type RunningManager } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { INFRA_ROUTES } from '../src/transport/http/serve.js';
import { routesOf } from '../src/transport/http/server.js';
import { enroll, expectError } from './support.js';

type Min = 'public' | Role;
type CallerName = 'anonymous' | `${Role}-session` | `${Role}-token`;
interface Caller { name: CallerName; role: Role | null; api: Api; user?: User }
interface Prepared { path: string; body?: unknown; accept?: string }
interface Entry {
  prepare(caller: Caller): Promise<EntryRequest> | EntryRequest;
  /** Where the route's own role lets a caller act on their own objects only: what acting on another's needs. */
  othersNeed?: Role;
}
interface EntryRequest { params?: Record<string, string>; query?: string; body?: unknown }

/** The path of a table route under /api/v1. */
const at = (name: RouteName, params?: Record<string, string>): string => `${API_PREFIX}${fillPath(ROUTES[name].path, params)}`;

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const PASSWORD = (role: Role) => `${role}-password-matrix`;

let dir: ReturnType<typeof tempDir>;
let database: ManagerDatabase;
let manager: RunningManager;
let base: string;
let admin: Api;
let enrollToken: string;
let deviceId: string;
const users = {} as Record<Role, User>;
const callers: Caller[] = [];

/** One request; an event stream is read up to its headers and then dropped. */
async function call(api: Api, method: string, path: string, body?: unknown, accept = 'application/json'): Promise<{ status: number; body: unknown; headers: Headers }> {
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, {
    method,
    signal: abort.signal,
    headers: {
      ...(api.token ? { authorization: `Bearer ${api.token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      accept,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, body: undefined, headers: res.headers };
  }
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* text */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

async function ok<T>(p: Promise<{ status: number; body: T }>, status: number): Promise<T> {
  const res = await p;
  assert.equal(res.status, status, JSON.stringify(res.body));
  return res.body;
}

const newUser = async (role: Role = 'viewer'): Promise<User> =>
  ok(admin.post<User>(at('createUser'), { username: `u-${randomUUID().slice(0, 8)}`, password: 'throwaway-password', role }), 201);
const newTask = async (): Promise<Task> =>
  ok(admin.post<Task>(at('powerVm', { id: deviceId, vmId: 'vm-1' }), { action: 'on' }), 202);
const newArtifact = async (): Promise<string> => {
  const version = randomUUID().slice(0, 8);
  const res = await fetch(`${base}${at('uploadArtifact')}?kind=patch&name=matrix&version=${version}`, {
    method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' }, body: patchFile(version, 'matrix bytes'),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
};
const newGroup = async (): Promise<string> =>
  (await ok(admin.post<{ id: string }>(at('createGroup'), { name: `g-${randomUUID().slice(0, 8)}`, deviceIds: [deviceId] }), 201)).id;
/** A rollout on a device of its own (two open rollouts of one operation may not share a device). */
const newRollout = async (): Promise<string> =>
  (await ok(admin.post<{ id: string }>(at('createRollout'), { name: 'matrix', operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' }, deviceIds: [await newDevice()] }), 201)).id;
const newDevice = async (): Promise<string> => (await enroll(new Api(base), enrollToken, `matrix-${randomUUID().slice(0, 6)}`)).deviceId;

/**
 * How to build a valid-looking request to each route: its params, query and body. The least
 * role a route needs comes from the route table; infrastructure routes are public.
 */
const MATRIX: Record<RouteName, Entry> = {
  login: { prepare: () => ({ body: { username: 'matrix-viewer', password: PASSWORD('viewer') } }) },
  logout: {
    // Its own fresh session, so the caller's session used by later cases survives.
    prepare: async (c) => {
      if (c.name.endsWith('-session')) c.api = await new Api(base).login(c.user!.username, PASSWORD(c.role!));
      return { body: {} };
    },
  },
  me: { prepare: () => ({}) },
  listUsers: { prepare: () => ({}) },
  createUser: { prepare: () => ({ body: { username: `n-${randomUUID().slice(0, 8)}`, password: 'created-password', role: 'viewer' } }) },
  // Object-level routes: the matrix uses another user's id (a viewer may reach only themselves).
  getUser: { othersNeed: 'admin', prepare: async () => ({ params: { id: (await newUser()).id } }) },
  updateUser: { othersNeed: 'admin', prepare: async () => ({ params: { id: (await newUser()).id }, body: { role: 'operator' } }) },
  deleteUser: { prepare: async () => ({ params: { id: (await newUser()).id } }) },
  listApiTokens: { prepare: () => ({}) },
  createApiToken: { prepare: () => ({ body: { name: 'matrix', role: 'viewer', expiresInDays: 1 } }) },
  revokeApiToken: {
    // A token of the caller's own user: revoking one's own is allowed to every role.
    prepare: async (c) => {
      if (!c.user) return { params: { id: randomUUID() } };
      const own = await new Api(base).login(c.user.username, PASSWORD(c.role!));
      const t = await ok(own.post<CreatedApiToken>(at('createApiToken'), { name: 'to-revoke', role: 'viewer' }), 201);
      return { params: { id: t.id } };
    },
  },
  listAudit: { prepare: () => ({ query: '?limit=5' }) },
  exportAudit: { prepare: () => ({ query: '?format=json&since=2100-01-01T00:00:00Z' }) },
  listDevices: { prepare: () => ({}) },
  getDevice: { prepare: () => ({ params: { id: deviceId } }) },
  getDeviceHistory: { prepare: () => ({ params: { id: deviceId }, query: '?step=900' }) },
  updateDevice: { prepare: () => ({ params: { id: deviceId }, body: { name: `renamed-${randomUUID().slice(0, 4)}` } }) },
  // On a manager without --require-approval every device is active: approving answers 409.
  approveDevice: { prepare: async () => ({ params: { id: await newDevice() }, body: {} }) },
  blockDevice: { prepare: async () => ({ params: { id: await newDevice() }, body: {} }) },
  unblockDevice: {
    prepare: async () => {
      const id = await newDevice();
      await ok(admin.post(at('blockDevice', { id }), {}), 200);
      return { params: { id }, body: {} };
    },
  },
  rotateDeviceCredential: { prepare: async () => ({ params: { id: await newDevice() }, body: {} }) },
  decommissionDevice: { prepare: async () => ({ params: { id: await newDevice() } }) },
  listEnrollmentTokens: { prepare: () => ({}) },
  createEnrollmentToken: { prepare: () => ({ body: { name: 'matrix' } }) },
  revokeEnrollmentToken: {
    prepare: async () => ({ params: { id: (await ok(admin.post<{ id: string }>(at('createEnrollmentToken'), {}), 201)).id } }),
  },
  enroll: { prepare: () => ({ body: { token: 'x'.repeat(20) } }) },
  enrollStatus: { prepare: () => ({ body: { deviceId: randomUUID(), secret: 'not-a-secret' } }) },
  listVms: { prepare: () => ({ params: { id: deviceId } }) },
  createVm: { prepare: () => ({ params: { id: deviceId }, body: { name: 'matrix-vm', vcpus: 1, memoryMB: 256, diskGB: 1 } }) },
  deployVm: { prepare: () => ({ params: { id: deviceId }, body: { source: { kind: 'file', path: '/data/matrix.ova' } } }) },
  updateAgent: { prepare: () => ({ params: { id: deviceId }, body: { artifactId: 'art_matrix0agent', healthySec: 30 } }) },
  patchDeviceHost: { prepare: () => ({ params: { id: deviceId }, body: { artifactId: 'art_matrix0patch' } }) },
  powerVm: { prepare: () => ({ params: { id: deviceId, vmId: 'vm-1' }, body: { action: 'off' } }) },
  updateVm: { prepare: () => ({ params: { id: deviceId, vmId: 'vm-1' }, body: { name: 'renamed' } }) },
  deleteVm: { prepare: () => ({ params: { id: deviceId, vmId: 'vm-1' } }) },
  listTasks: { prepare: () => ({}) },
  createBulkTask: { prepare: () => ({ body: { operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' }, deviceIds: [deviceId] } }) },
  getTask: { prepare: async () => ({ params: { id: (await newTask()).id } }) },
  cancelTask: { prepare: async () => ({ params: { id: (await newTask()).id }, body: {} }) },
  retryTask: {
    prepare: async () => {
      const task = await newTask();
      await ok(admin.post(at('cancelTask', { id: task.id }), {}), 202);
      return { params: { id: task.id }, body: {} };
    },
  },
  listGroups: { prepare: () => ({}) },
  createGroup: { prepare: () => ({ body: { name: `m-${randomUUID().slice(0, 8)}`, query: { tags: ['site=matrix'] } } }) },
  getGroup: { prepare: async () => ({ params: { id: await newGroup() } }) },
  updateGroup: { prepare: async () => ({ params: { id: await newGroup() }, body: { description: 'changed' } }) },
  deleteGroup: { prepare: async () => ({ params: { id: await newGroup() } }) },
  listGroupMembers: { prepare: async () => ({ params: { id: await newGroup() } }) },
  listRollouts: { prepare: () => ({}) },
  createRollout: { prepare: async () => ({ body: { name: 'matrix', operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' }, deviceIds: [await newDevice()] } }) },
  planRollout: { prepare: () => ({ body: { deviceIds: [deviceId], waves: { sizes: [1] } } }) },
  getRollout: { prepare: async () => ({ params: { id: await newRollout() } }) },
  listRolloutDevices: { prepare: async () => ({ params: { id: await newRollout() } }) },
  pauseRollout: { prepare: async () => ({ params: { id: await newRollout() }, body: { reason: 'matrix' } }) },
  resumeRollout: {
    prepare: async () => {
      const id = await newRollout();
      await ok(admin.post(at('pauseRollout', { id }), {}), 200);
      return { params: { id }, body: {} };
    },
  },
  abortRollout: { prepare: async () => ({ params: { id: await newRollout() }, body: { reason: 'matrix' } }) },
  followEvents: { prepare: () => ({}) },
  fleetSummary: { prepare: () => ({}) },
  fleetHistory: { prepare: () => ({ query: '?metric=presence,tasks' }) },
  fleetFailingDevices: { prepare: () => ({ query: '?limit=5' }) },
  clusterStatus: { prepare: () => ({}) },
  signingKey: { prepare: () => ({}) },
  // A JSON body gets 415 from an allowed caller: the role check comes first, which is the point.
  uploadArtifact: { prepare: () => ({ query: `?kind=patch&name=matrix&version=${randomUUID().slice(0, 8)}` }) },
  listArtifacts: { prepare: () => ({}) },
  getArtifact: { prepare: async () => ({ params: { id: await newArtifact() } }) },
  deleteArtifact: { prepare: async () => ({ params: { id: await newArtifact() } }) },
  downloadArtifact: { prepare: async () => ({ params: { id: await newArtifact() } }) },
  createDownloadUrl: { prepare: async () => ({ params: { id: await newArtifact() }, body: { deviceId } }) },
};

/** Routes outside the table (INFRA_ROUTES), all public, with how to call each. */
const INFRA: Record<(typeof INFRA_ROUTES)[number], () => Promise<Prepared> | Prepared> = {
  'GET /healthz': () => ({ path: '/healthz' }),
  'GET /readyz': () => ({ path: '/readyz' }),
  'GET /metrics': () => ({ path: '/metrics' }),
  // A browser's deep link (it asks for HTML; an API client asking for JSON gets a 404 there).
  'GET /*': () => ({ path: '/devices', accept: 'text/html' }),
  'GET /api/v1/openapi.json': () => ({ path: `${API_PREFIX}/openapi.json` }),
  // A device's signed download URL is the credential; without a valid signature: 403.
  'GET /dl/:artifactId': async () => {
    const made = await ok(admin.post<{ url: string }>(at('createDownloadUrl', { id: await newArtifact() }), { deviceId }), 201);
    const url = new URL(made.url);
    return { path: `${url.pathname}${url.search}` };
  },
};

/**
 * What an allowed caller gets from each route: the exact status, and for a 4xx the error code.
 * A 4xx is an answer only when it is the one named here (the validator or the missing or
 * conflicting object answered); any other 4xx could be a guard that never ran its route.
 * Unlisted table routes answer with their table status.
 */
type Answer = number | { status: number; code: string } | ((caller: Caller) => number | { status: number; code: string });
const ANSWERS: Partial<Record<RouteName | (typeof INFRA_ROUTES)[number], Answer>> = {
  'GET /healthz': 200,
  'GET /readyz': 200,
  'GET /metrics': 200,
  'GET /*': 200,
  'GET /api/v1/openapi.json': 200,
  'GET /dl/:artifactId': 200,
  // An API token is not a session: it is revoked, not logged out.
  logout: (c) => (c.name.endsWith('-token') ? { status: 400, code: 'invalid_request' } : 204),
  approveDevice: { status: 409, code: 'device_state_conflict' },
  // Tokens cannot make tokens (issue #15 point 8): only a login session can.
  createApiToken: (c) => (c.name.endsWith('-token') ? { status: 403, code: 'forbidden' } : 201),
  // The body lacks deviceId and facts: the validator answers, before any token lookup.
  enroll: { status: 400, code: 'invalid_request' },
  // No such device: the credential check answers for any caller.
  enrollStatus: { status: 401, code: 'credential_invalid' },
  // The artifacts do not exist: the task service answers after the role check passed.
  updateAgent: { status: 400, code: 'invalid_request' },
  patchDeviceHost: { status: 400, code: 'invalid_request' },
  uploadArtifact: { status: 415, code: 'unsupported_media_type' },
};

/** Whether a response is the route's own answer (see ANSWERS). */
function isAnswer(answer: Answer, caller: Caller, res: { status: number; body: unknown }): boolean {
  const expected = typeof answer === 'function' ? answer(caller) : answer;
  if (typeof expected === 'number') return res.status === expected;
  return res.status === expected.status && (res.body as { error?: { code?: string } } | undefined)?.error?.code === expected.code;
}

/** One case of the matrix: the method, the least role, and how to build the request. */
interface Case { key: string; method: string; min: Min; answer: Answer; prepare(c: Caller): Promise<Prepared> }
const CASES: Case[] = [
  ...ROUTE_NAMES.map((name): Case => {
    const spec = ROUTES[name];
    const entry = MATRIX[name];
    return {
      key: `${spec.method} ${API_PREFIX}${spec.path}`,
      method: spec.method,
      min: entry.othersNeed ?? spec.role,
      answer: ANSWERS[name] ?? spec.status,
      prepare: async (c) => {
        const { params, query, body } = await entry.prepare(c);
        return { path: `${at(name, params)}${query ?? ''}`, body };
      },
    };
  }),
  ...Object.entries(INFRA).map(([key, prepare]): Case => ({ key, method: 'GET', min: 'public', answer: ANSWERS[key as keyof typeof INFRA]!, prepare: async () => prepare() })),
];

before(async () => {
  dir = tempDir('pallas-matrix-');
  // SQLite, or a fresh PostgreSQL database in the runner's PostgreSQL pass.
  database = await managerDatabase(undefined, dir.path);
  manager = await startManager(loadConfig([
    ...database.args,
    '--data-dir', dir.path, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0', '--http-host', '127.0.0.1', '--mqtt-host', '127.0.0.1',
    '--log-level', 'silent', '--admin-password', ADMIN_PASSWORD, '--trust-proxy', '127.0.0.1',
  ], {}));
  base = `http://127.0.0.1:${manager.ports.http}`;
  admin = await new Api(base).login('admin', ADMIN_PASSWORD);
  enrollToken = await createEnrollmentToken(admin, { maxUses: 1000 });
  deviceId = (await enroll(new Api(base), enrollToken, 'matrix-device')).deviceId;
  callers.push({ name: 'anonymous', role: null, api: new Api(base) });
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    users[role] = await ok(admin.post<User>('/api/v1/users', { username: `matrix-${role}`, password: PASSWORD(role), role }), 201);
    const session = await new Api(base).login(`matrix-${role}`, PASSWORD(role));
    const token = await ok(session.post<CreatedApiToken>('/api/v1/api-tokens', { name: `matrix-${role}` }), 201);
    callers.push({ name: `${role}-session`, role, api: session, user: users[role] });
    callers.push({ name: `${role}-token`, role, api: new Api(base, token.token), user: users[role] });
  }
});

after(async () => {
  await manager?.stop();
  await database?.dispose();
  dir?.cleanup();
});

describe('role matrix', () => {
  it('has an entry for every registered route, and no stale entries', () => {
    const registered = routesOf(manager.http)
      .filter((r) => r.method !== 'HEAD') // Fastify's automatic twin of each GET
      .map((r) => `${r.method} ${r.url}`);
    const keys = CASES.map((c) => c.key);
    const missing = registered.filter((k) => !keys.includes(k));
    assert.deepEqual(missing, [], `routes without a matrix entry (add them to MATRIX in ${import.meta.url}): ${missing.join(', ')}`);
    const stale = keys.filter((k) => !registered.includes(k));
    assert.deepEqual(stale, [], `matrix entries for routes that do not exist: ${stale.join(', ')}`);
  });

  it('gives every caller 401, 403 or an answer, as its role allows, on every route', async () => {
    let cases = 0;
    const failures: string[] = [];
    for (const entry of CASES) {
      const { key, method } = entry;
      for (const original of callers) {
        const caller = { ...original };
        const { path, body, accept } = await entry.prepare(caller);
        const res = await call(caller.api, method, path, body ?? (method === 'GET' || method === 'DELETE' ? undefined : {}), accept);
        cases++;
        const label = `${key} as ${caller.name} (${path}): ${res.status} ${JSON.stringify(res.body)?.slice(0, 200)}`;
        if (entry.min === 'public' || (caller.role !== null && RANK[caller.role] >= RANK[entry.min])) {
          if (!isAnswer(entry.answer, caller, res)) failures.push(`expected the route's own answer (ANSWERS, else its table status): ${label}`);
        } else if (caller.role === null) {
          if (res.status !== 401) failures.push(`expected 401: ${label}`);
        } else if (res.status !== 403) {
          failures.push(`expected 403: ${label}`);
        }
      }
    }
    console.log(`role matrix: ${cases} cases (${CASES.length} routes × ${callers.length} callers)`);
    assert.deepEqual(failures, []);
  });
});

describe('object-level access', () => {
  it('lets users read themselves but no one else, and change only their own password', async () => {
    const viewer = callers.find((c) => c.name === 'viewer-session')!.api;
    const other = await newUser('operator');
    assert.equal((await ok(viewer.get<User>(`/api/v1/users/${users.viewer.id}`), 200)).username, 'matrix-viewer');
    expectError(await viewer.get(`/api/v1/users/${other.id}`), 403, 'forbidden');
    expectError(await viewer.patch(`/api/v1/users/${other.id}`, { password: 'taken-over-password' }), 403, 'forbidden');
    // Changing one's own password needs the current one.
    expectError(await viewer.patch(`/api/v1/users/${users.viewer.id}`, { password: 'another-viewer-pass' }), 400, 'invalid_request', 'currentPassword');
    expectError(await viewer.patch(`/api/v1/users/${users.viewer.id}`, { password: 'another-viewer-pass', currentPassword: 'wrong-one' }), 403, 'forbidden', 'currentPassword');
    // Through an API token, never.
    const viewerToken = callers.find((c) => c.name === 'viewer-token')!.api;
    expectError(await viewerToken.patch(`/api/v1/users/${users.viewer.id}`, { password: 'another-viewer-pass', currentPassword: PASSWORD('viewer') }), 403, 'forbidden', 'API token');
  });

  it('does not let an operator (or anyone but an admin) change a role, including their own', async () => {
    for (const name of ['operator-session', 'operator-token', 'viewer-session'] as const) {
      const c = callers.find((x) => x.name === name)!;
      expectError(await c.api.patch(`/api/v1/users/${c.user!.id}`, { role: 'admin' }), 403, 'forbidden');
      assert.equal((await ok(c.api.get<User>('/api/v1/auth/me'), 200)).role, c.role);
    }
    // Nor mint a token above their role.
    const op = callers.find((x) => x.name === 'operator-session')!.api;
    expectError(await op.post('/api/v1/api-tokens', { name: 'escalate', role: 'admin' }), 403, 'forbidden', 'role');
  });

  it("keeps API tokens private to their owner: no listing, no revoking another's; admins may", async () => {
    const alice = await newUser('operator');
    const aliceApi = await new Api(base).login(alice.username, 'throwaway-password');
    const token = await ok(aliceApi.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'alice-ci', expiresInDays: 30 }), 201);
    assert.match(token.token, /^pat_[A-Za-z0-9_-]{43}$/);
    const op = callers.find((x) => x.name === 'operator-session')!.api;
    const opList = await ok(op.get<PageOf<ApiToken>>('/api/v1/api-tokens'), 200);
    assert.ok(opList.items.every((t) => t.userId === users.operator.id), 'only their own');
    expectError(await op.get('/api/v1/api-tokens?all=true'), 403, 'forbidden');
    expectError(await op.delete(`/api/v1/api-tokens/${token.id}`), 404, 'not_found');
    // Still works after the failed attempt.
    assert.equal((await ok(new Api(base, token.token).get<User>('/api/v1/auth/me'), 200)).username, alice.username);
    const all = await ok(admin.get<PageOf<ApiToken>>('/api/v1/api-tokens?all=true&limit=1000'), 200);
    const listed = all.items.find((t) => t.id === token.id)!;
    assert.equal(listed.name, 'alice-ci');
    assert.ok(!('token' in listed) && !JSON.stringify(all).includes(token.token), 'no secret in listings');
    assert.ok(listed.lastUsedAt, 'last use recorded');
    await ok(admin.delete(`/api/v1/api-tokens/${token.id}`), 204);
    expectError(await new Api(base, token.token).get('/api/v1/auth/me'), 401, 'unauthorized', 'revoked');
  });

  it('refuses an expired token clearly, and caps a token at its owner\'s current role', async () => {
    const bob = await newUser('admin');
    const bobApi = await new Api(base).login(bob.username, 'throwaway-password');
    const token = await ok(bobApi.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'bob-admin', role: 'admin', expiresInDays: 1 }), 201);
    const bobToken = new Api(base, token.token);
    await ok(bobToken.get('/api/v1/users'), 200);
    await ok(admin.patch(`/api/v1/users/${bob.id}`, { role: 'viewer' }), 200);
    expectError(await bobToken.get('/api/v1/users'), 403, 'forbidden');
    assert.equal((await ok(bobToken.get<User>('/api/v1/auth/me'), 200)).role, 'viewer');
    await manager.store.write.updateTable('api_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', token.id).execute();
    expectError(await bobToken.get('/api/v1/auth/me'), 401, 'unauthorized', 'expired');
    expectError(await new Api(base, 'pat_not-a-real-token').get('/api/v1/auth/me'), 401, 'unauthorized', 'unknown API token');
    // Deleting the user removes their tokens.
    const carol = await newUser('viewer');
    const carolApi = await new Api(base).login(carol.username, 'throwaway-password');
    const carolToken = await ok(carolApi.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'c' }), 201);
    await ok(admin.delete(`/api/v1/users/${carol.id}`), 204);
    expectError(await new Api(base, carolToken.token).get('/api/v1/auth/me'), 401, 'unauthorized');
  });

  it('does not let an API token create a token (one that would outlive or outrank it) (issue #15 point 8)', async () => {
    const dan = await newUser('admin');
    const danApi = await new Api(base).login(dan.username, 'throwaway-password');
    const shortLived = await ok(danApi.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'expires-tomorrow', role: 'operator', expiresInDays: 1 }), 201);
    const viaToken = new Api(base, shortLived.token);
    expectError(await viaToken.post('/api/v1/api-tokens', { name: 'forever' }), 403, 'forbidden', 'log in');
    expectError(await viaToken.post('/api/v1/api-tokens', { name: 'forever-viewer', role: 'viewer', expiresInDays: 1 }), 403, 'forbidden');
    const dansTokens = await ok(admin.get<PageOf<ApiToken>>('/api/v1/api-tokens?all=true&limit=1000'), 200);
    assert.deepEqual(dansTokens.items.filter((t) => t.userId === dan.id).map((t) => t.name), ['expires-tomorrow']);
  });
});

describe('console cookie session', () => {
  async function cookieLogin(): Promise<{ cookie: string; csrf: string; setCookies: string[] }> {
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'matrix-operator', password: PASSWORD('operator'), cookie: true }),
    });
    assert.equal(res.status, 200);
    const body = await res.json() as { token?: string; csrfToken: string };
    assert.equal(body.token, undefined, 'the session secret is not in the body of a cookie login');
    const setCookies = res.headers.getSetCookie();
    const cookie = setCookies.map((c) => c.split(';')[0]).join('; ');
    return { cookie, csrf: body.csrfToken, setCookies };
  }

  it('sets HttpOnly, SameSite=Strict cookies on path / (not Secure over plain HTTP)', async () => {
    const { setCookies, csrf } = await cookieLogin();
    const session = setCookies.find((c) => c.startsWith('pallas_session='))!;
    const csrfCookie = setCookies.find((c) => c.startsWith('pallas_csrf='))!;
    assert.match(session, /; HttpOnly/);
    assert.match(session, /; SameSite=Strict/);
    assert.match(session, /; Path=\//);
    assert.doesNotMatch(session, /Secure/);
    assert.doesNotMatch(csrfCookie, /HttpOnly/, 'the page must read the CSRF token');
    assert.ok(csrfCookie.includes(`pallas_csrf=${csrf}`));
  });

  it('reads with the cookie alone, but writes only with the CSRF header and from our origin', async () => {
    const { cookie, csrf } = await cookieLogin();
    const get = await fetch(`${base}/api/v1/auth/me`, { headers: { cookie } });
    assert.equal(get.status, 200);
    const post = (headers: Record<string, string>) => fetch(`${base}/api/v1/enrollment-tokens`, {
      method: 'POST', body: '{}', headers: { cookie, 'content-type': 'application/json', ...headers },
    });
    assert.equal((await post({})).status, 403, 'no CSRF header');
    assert.equal((await post({ 'x-csrf-token': 'forged' })).status, 403, 'wrong CSRF token');
    assert.equal((await post({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).status, 403, 'foreign origin');
    assert.equal((await post({ 'x-csrf-token': csrf })).status, 201);
    assert.equal((await post({ 'x-csrf-token': csrf, origin: base })).status, 201);
    const out = await fetch(`${base}/api/v1/auth/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 204);
    assert.ok(out.headers.getSetCookie().some((c) => c.startsWith('pallas_session=;') && c.includes('Max-Age=0')));
    assert.equal((await fetch(`${base}/api/v1/auth/me`, { headers: { cookie } })).status, 401);
  });
});

describe('behind a trusted reverse proxy', () => {
  it('takes the client address and HTTPS from the proxy: Secure cookies, the real address in the audit log', async () => {
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' },
      body: JSON.stringify({ username: 'matrix-viewer', password: PASSWORD('viewer'), cookie: true }),
    });
    assert.equal(res.status, 200);
    for (const c of res.headers.getSetCookie()) assert.match(c, /; Secure/);
    const failed = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.23' },
      body: JSON.stringify({ username: 'matrix-viewer', password: 'not-the-password' }),
    });
    assert.equal(failed.status, 401);
    await waitFor('the failed login in the audit log', async () => {
      const page = await ok(admin.get<PageOf<AuditEntry>>('/api/v1/audit?action=login.failed&actor=matrix-viewer'), 200);
      return page.items.some((e) => e.ip === '198.51.100.23');
    });
  });
});

