/**
 * A tiny in-memory stand-in for the manager, enough to drive the CLI through task lifecycles
 * the tests script (a failure, a late result, a stream that drops). Its routes are the
 * protocol's route table, matched by name, so it cannot drift from the API; the real manager
 * is covered by the end-to-end tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_PREFIX, ROUTES, ROUTE_NAMES, type Device, type EnrollmentToken, type LiveEvent, type RouteName, type Task, type TaskOperation, type User } from '@pallas/protocol';
import { sampleHostFacts } from '@pallas/testkit';

export interface FakeManager {
  url: string;
  devices: Device[];
  users: (User & { password: string })[];
  tokens: EnrollmentToken[];
  /** Tasks, oldest first (listed newest first, like the manager). */
  tasks: Task[];
  /** Requests seen: the route called (by its name in the table), its params and query, the Authorization header. */
  log: { route: RouteName | undefined; params: Record<string, string>; query: string; auth: string | undefined; body: unknown; lastEventId?: string | undefined }[];
  /** Whether `route` was called (with these params, when given). */
  called(route: RouteName, params?: Record<string, string>): boolean;
  /** The last call: which route, with which params and query. */
  lastCall(): { route: RouteName | undefined; params: Record<string, string>; query: string } | undefined;
  /** The live stream: off answers 404 (an older manager); `retry:` sent on connect. */
  sse: { enabled: boolean; retryMs: number };
  /** Events published so far, with their ids (replayed after `Last-Event-ID`). */
  events: { id: number; event: LiveEvent }[];
  /** Called with each task the API creates (tests script its life with `play`). */
  onTaskCreated: ((task: Task) => void) | undefined;
  /** Change a task and publish a `task` event, as the manager does on every change. */
  updateTask(id: string, patch: Partial<Task>): Task;
  /** Apply patches one after another, `everyMs` apart; resolves after the last. */
  play(id: string, steps: Partial<Task>[], everyMs?: number): Promise<void>;
  publish(event: LiveEvent): void;
  /** Cut every open event stream, as a proxy or a network blip would. */
  dropStreams(): void;
  /** Event streams open right now. */
  openStreams(): number;
  reset(): void;
  close(): Promise<void>;
}

export const VALID_TOKEN = 'sess-123';
/** An API token the fake manager also takes, as the same user. */
export const VALID_API_TOKEN = 'pat_fake123';

export function device(over: Partial<Device> & { id: string; name: string }): Device {
  return {
    tags: [],
    presence: 'online',
    status: 'active',
    flags: [],
    lastSeenAt: new Date(Date.now() - 12_000).toISOString(),
    enrolledAt: '2025-01-01T00:00:00.000Z',
    facts: sampleHostFacts(`${over.name}.local`),
    vms: [],
    ...over,
  };
}

let taskSeq = 0;

/** A task as the manager returns it when created (queued), with overrides. */
export function task(over: Partial<Task> & { deviceId: string; operation: TaskOperation }): Task {
  const now = new Date().toISOString();
  const op = over.operation;
  return {
    id: `tsk_${String(++taskSeq).padStart(6, '0')}`,
    kind: op.kind,
    vmId: 'vmId' in op ? op.vmId : null,
    state: 'queued',
    progress: { pct: 0, message: null },
    cancelRequested: false,
    error: null,
    vm: null,
    retryOf: null,
    attempt: 1,
    createdBy: 'admin',
    createdAt: now,
    sentAt: null,
    startedAt: null,
    finishedAt: null,
    deadlineAt: new Date(Date.now() + 86_400_000).toISOString(),
    lateResult: null,
    ...over,
  };
}

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** The table's routes as patterns, literal segments before parameters (`vms/deploy` before `vms/:vmId`). */
const PATTERNS = ROUTE_NAMES
  .map((name) => {
    const names: string[] = [];
    const source = ROUTES[name].path.replace(/:([A-Za-z]+)/g, (_, n: string) => {
      names.push(n);
      return '([^/]+)';
    });
    return { name, method: ROUTES[name].method as string, re: new RegExp(`^${API_PREFIX}${source}$`), names };
  })
  .sort((a, b) => a.names.length - b.names.length);

function matchRoute(method: string, pathname: string): { name: RouteName; params: Record<string, string> } | undefined {
  for (const p of PATTERNS) {
    const m = p.method === method ? p.re.exec(pathname) : null;
    if (m) return { name: p.name, params: Object.fromEntries(p.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
  }
  return undefined;
}

export async function startFakeManager(): Promise<FakeManager> {
  const streams = new Set<{ res: ServerResponse; wants: (e: LiveEvent) => boolean }>();
  const state = {
    devices: [] as Device[],
    users: [{ id: 'u1', username: 'admin', role: 'admin', createdAt: '2025-01-01T00:00:00.000Z', password: 'secret-pw' }] as (User & { password: string })[],
    tokens: [] as EnrollmentToken[],
    tasks: [] as Task[],
    log: [] as FakeManager['log'],
    sse: { enabled: true, retryMs: 20 },
    events: [] as FakeManager['events'],
    onTaskCreated: undefined as FakeManager['onTaskCreated'],
  };
  // Pretty-printed JSON makes every event a multi-line `data:` block: the client must join them.
  const frame = (id: number, e: LiveEvent): string =>
    `id: ${id}\nevent: ${e.type}\n${JSON.stringify(e, null, 2).split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
  const publish = (event: LiveEvent): void => {
    const id = state.events.length + 1;
    state.events.push({ id, event });
    for (const s of streams) if (s.wants(event)) s.res.write(frame(id, event));
  };
  const updateTask = (id: string, patch: Partial<Task>): Task => {
    const i = state.tasks.findIndex((t) => t.id === id);
    if (i < 0) throw new Error(`no task ${id}`);
    const t = { ...state.tasks[i]!, ...patch };
    state.tasks[i] = t;
    publish({ type: 'task', task: t });
    return t;
  };
  const createTask = (deviceId: string, operation: TaskOperation, u: URL, over: Partial<Task> = {}): Task => {
    const timeout = Number(u.searchParams.get('timeoutSec') ?? 86_400);
    const t = task({ deviceId, operation, deadlineAt: new Date(Date.now() + timeout * 1000).toISOString(), ...over });
    state.tasks.push(t);
    publish({ type: 'task', task: t });
    state.onTaskCreated?.(t);
    return t;
  };
  const send = (res: ServerResponse, status: number, body?: unknown): void => {
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string): void =>
    send(res, status, { error: { code, message } });
  const page = <T>(items: T[], u: URL) => {
    const limit = Number(u.searchParams.get('limit') ?? 50);
    const offset = Number(u.searchParams.get('offset') ?? 0);
    return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
  };
  const publicUser = ({ password: _p, ...u }: User & { password: string }): User => u;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', 'http://x');
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const body: unknown = text ? JSON.parse(text) : undefined;
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    const route = matchRoute(req.method ?? 'GET', u.pathname);
    state.log.push({ route: route?.name, params: route?.params ?? {}, query: u.search.slice(1), auth: req.headers.authorization, body, lastEventId });
    if (!route) return fail(res, 404, 'not_found', `no route ${req.method} ${u.pathname}`);
    const { name, params } = route;
    if (ROUTES[name].role !== 'public' && req.headers.authorization !== `Bearer ${VALID_TOKEN}` && req.headers.authorization !== `Bearer ${VALID_API_TOKEN}`) return fail(res, 401, 'unauthorized', 'invalid token');
    const deviceAt = (): number => state.devices.findIndex((x) => x.id === params.id);
    const taskOf = (): Task | undefined => state.tasks.find((x) => x.id === params.id);

    switch (name) {
      case 'login': {
        const { username, password } = body as { username: string; password: string };
        const user = state.users.find((x) => x.username === username && x.password === password);
        if (!user) return fail(res, 401, 'invalid_credentials', 'invalid username or password');
        return send(res, 200, { token: VALID_TOKEN, expiresAt: '2030-01-01T00:00:00.000Z', user: publicUser(user) });
      }
      case 'logout':
        return send(res, 204);
      case 'me':
        return send(res, 200, publicUser(state.users[0]!));

      case 'listDevices': {
        const name = u.searchParams.get('name')?.toLowerCase();
        const tag = u.searchParams.get('tag');
        const presence = u.searchParams.get('presence');
        const items = state.devices.filter(
          (d) => (!name || d.name.toLowerCase().includes(name)) && (!tag || d.tags.includes(tag)) && (!presence || d.presence === presence),
        );
        return send(res, 200, page(items, u));
      }
      case 'getDevice':
      case 'updateDevice':
      case 'decommissionDevice': {
        const i = deviceAt();
        if (i < 0) return fail(res, 404, 'not_found', 'device not found');
        if (name === 'getDevice') return send(res, 200, state.devices[i]);
        if (name === 'updateDevice') {
          state.devices[i] = { ...state.devices[i]!, ...(body as object) };
          return send(res, 200, state.devices[i]);
        }
        state.devices.splice(i, 1);
        return send(res, 204);
      }
      case 'listVms':
      case 'createVm':
      case 'deployVm':
      case 'powerVm':
      case 'updateVm':
      case 'deleteVm': {
        const d = state.devices[deviceAt()];
        if (!d) return fail(res, 404, 'not_found', 'device not found');
        const vmId = params.vmId!;
        switch (name) {
          case 'listVms': return send(res, 200, d.vms);
          case 'createVm': return send(res, 202, createTask(d.id, { kind: 'vm.create', spec: body as never }, u));
          case 'deployVm': return send(res, 202, createTask(d.id, { kind: 'vm.deploy', ...(body as object) } as never, u));
          case 'powerVm': return send(res, 202, createTask(d.id, { kind: 'vm.power', vmId, action: (body as { action: never }).action }, u));
          case 'updateVm': return send(res, 202, createTask(d.id, { kind: 'vm.update', vmId, patch: body as never }, u));
          default: return send(res, 202, createTask(d.id, { kind: 'vm.delete', vmId }, u));
        }
      }
      case 'listTasks': {
        const q = (k: string) => u.searchParams.get(k);
        const items = state.tasks
          .filter((t) => (!q('deviceId') || t.deviceId === q('deviceId')) && (!q('vmId') || t.vmId === q('vmId')))
          .filter((t) => (!q('state') || t.state === q('state')) && (!q('kind') || t.kind === q('kind')))
          .reverse();
        return send(res, 200, page(items, u));
      }
      case 'getTask':
      case 'cancelTask':
      case 'retryTask': {
        const t = taskOf();
        if (!t) return fail(res, 404, 'not_found', 'task not found');
        if (name === 'getTask') return send(res, 200, t);
        if (name === 'cancelTask') {
          if (FINAL.includes(t.state)) return fail(res, 409, 'task_final', `task ${t.id} is already ${t.state}`);
          const patch: Partial<Task> =
            t.state === 'queued' ? { state: 'cancelled', finishedAt: new Date().toISOString() } : { cancelRequested: true };
          return send(res, 202, updateTask(t.id, patch));
        }
        if (!['failed', 'cancelled', 'timed_out'].includes(t.state)) return fail(res, 409, 'conflict', `task ${t.id} is ${t.state}`);
        return send(res, 201, createTask(t.deviceId, t.operation, u, { retryOf: t.retryOf ?? t.id, attempt: t.attempt + 1 }));
      }
      case 'followEvents': {
        if (!state.sse.enabled) return fail(res, 404, 'not_found', `no route GET ${u.pathname}`);
        const taskId = u.searchParams.get('taskId');
        const deviceId = u.searchParams.get('deviceId');
        const wants = (e: LiveEvent): boolean => {
          if (taskId) return e.type === 'task' && e.task.id === taskId;
          if (!deviceId) return true;
          return e.type === 'task' ? e.task.deviceId === deviceId : e.type === 'vms' ? e.deviceId === deviceId : e.type === 'device' && e.device.id === deviceId;
        };
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
        res.write(`retry: ${state.sse.retryMs}\n: connected\n\n`);
        const last = Number(req.headers['last-event-id']);
        if (Number.isInteger(last)) for (const e of state.events) if (e.id > last && wants(e.event)) res.write(frame(e.id, e.event));
        const s = { res, wants };
        streams.add(s);
        res.on('close', () => streams.delete(s));
        return;
      }
      case 'listUsers':
        return send(res, 200, page(state.users.map(publicUser), u));
      case 'createUser': {
        const b = body as { username: string; password: string; role: User['role'] };
        const user = { id: `u${state.users.length + 1}`, createdAt: new Date().toISOString(), ...b };
        state.users.push(user);
        return send(res, 201, publicUser(user));
      }
      case 'updateUser':
      case 'deleteUser': {
        const i = state.users.findIndex((x) => x.id === params.id);
        if (i < 0) return fail(res, 404, 'not_found', 'user not found');
        if (name === 'updateUser') {
          state.users[i] = { ...state.users[i]!, ...(body as object) };
          return send(res, 200, publicUser(state.users[i]!));
        }
        state.users.splice(i, 1);
        return send(res, 204);
      }
      case 'listEnrollmentTokens':
        return send(res, 200, page(state.tokens, u));
      case 'createEnrollmentToken': {
        const b = body as { name?: string; ttlSec?: number; maxUses?: number };
        const t: EnrollmentToken = {
          id: `t${state.tokens.length + 1}`,
          name: b.name ?? '',
          expiresAt: new Date(Date.now() + (b.ttlSec ?? 86400) * 1000).toISOString(),
          maxUses: b.maxUses ?? 1,
          uses: 0,
          revoked: false,
          createdAt: new Date().toISOString(),
          createdBy: 'admin',
        };
        state.tokens.push(t);
        return send(res, 201, { ...t, token: 'enr-secret-xyz' });
      }
      case 'revokeEnrollmentToken': {
        const t = state.tokens.find((x) => x.id === params.id);
        if (!t) return fail(res, 404, 'not_found', 'enrollment token not found');
        t.revoked = true;
        return send(res, 204);
      }
      // History (docs/history.md): a day with two outages, and a fleet that grew by one.
      case 'getDeviceHistory': {
        if (deviceAt() < 0) return fail(res, 404, 'not_found', 'device not found');
        const to = Date.parse(u.searchParams.get('to')!);
        const from = Date.parse(u.searchParams.get('from')!);
        const at = (min: number) => new Date(to - min * 60_000).toISOString();
        const stat = (v: number) => ({ min: v - 5, avg: v, max: v + 5 });
        return send(res, 200, {
          deviceId: params.id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), step: 3600,
          points: [20, 40].map((cpu, i) => ({ at: at(120 - 60 * i), samples: 120, cpuPct: stat(cpu), memoryUsedMB: stat(1000), memoryTotalMB: 8192, datastoreUsedGB: stat(250), datastoreCapacityGB: 500 })),
          presence: [],
          presenceSummary: [
            { state: 'offline', times: 2, totalSec: 51 * 60, longestSec: 41 * 60 },
            { state: 'online', times: 2, totalSec: 24 * 3600 - 51 * 60, longestSec: 20 * 3600 },
          ],
        });
      }
      case 'fleetSummary':
        return send(res, 200, {
          devices: { total: 3, online: 2, offline: 1 }, tasks: { queued: 1, sent: 0, running: 0, last24h: { succeeded: 4, failed: 3, cancelled: 0, timedOut: 0 } },
          hypervisors: [], agentVersions: [], generatedAt: new Date().toISOString(),
        });
      case 'fleetHistory': {
        const from = Date.parse(u.searchParams.get('from')!);
        const hour = (h: number) => new Date(from + h * 3600_000).toISOString();
        const point = (h: number, v: number) => ({ at: hour(h), min: v, avg: v, max: v, sum: v });
        return send(res, 200, {
          from: new Date(from).toISOString(), to: u.searchParams.get('to'), step: 3600,
          series: [
            { metric: 'presence', label: 'online', points: Array.from({ length: 24 }, (_, h) => point(h, h < 12 ? 1 : 2)) },
            { metric: 'tasks', label: 'failed/vm.deploy/download_failed', points: [point(3, 2)] },
            { metric: 'tasks', label: 'failed/vm.power/not_found', points: [point(20, 1)] },
            { metric: 'tasks', label: 'succeeded/vm.create/', points: [point(5, 4)] },
            { metric: 'enrollments', label: '', points: [point(12, 1)] },
          ],
        });
      }
      default:
        return fail(res, 404, 'not_found', `the fake manager does not serve ${name}`);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => fail(res, 500, 'internal', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dropStreams = (): void => {
    for (const s of streams) s.res.destroy();
    streams.clear();
  };
  const mgr: FakeManager = Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    updateTask,
    publish,
    dropStreams,
    openStreams: () => streams.size,
    lastCall: () => {
      const l = state.log.at(-1);
      return l && { route: l.route, params: l.params, query: l.query };
    },
    called: (route: RouteName, params: Record<string, string> = {}) =>
      state.log.some((l) => l.route === route && Object.entries(params).every(([k, v]) => l.params[k] === v)),
    async play(id: string, steps: Partial<Task>[], everyMs = 5): Promise<void> {
      for (const step of steps) {
        await new Promise((r) => setTimeout(r, everyMs));
        updateTask(id, step);
      }
    },
    reset(): void {
      state.tasks.length = 0;
      state.events.length = 0;
      state.log.length = 0;
      state.sse.enabled = true;
      state.onTaskCreated = undefined;
    },
    close: () => {
      dropStreams();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return mgr;
}
