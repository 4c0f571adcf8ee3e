/**
 * A tiny in-memory stand-in for the manager's REST API, enough to drive the CLI in tests.
 * It follows the protocol's shapes; the real manager is covered by the end-to-end tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Device, EnrollmentToken, LiveEvent, Task, TaskOperation, User, Vm } from '@pallas/protocol';

export interface FakeManager {
  url: string;
  devices: Device[];
  users: (User & { password: string })[];
  tokens: EnrollmentToken[];
  /** Tasks, oldest first (listed newest first, like the manager). */
  tasks: Task[];
  /** Requests seen, as "METHOD /path?query" plus the Authorization header. */
  log: { line: string; auth: string | undefined; body: unknown; lastEventId?: string | undefined }[];
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

export function device(over: Partial<Device> & { id: string; name: string }): Device {
  return {
    tags: [],
    presence: 'online',
    status: 'active',
    flags: [],
    lastSeenAt: new Date(Date.now() - 12_000).toISOString(),
    enrolledAt: '2025-01-01T00:00:00.000Z',
    facts: {
      hostname: `${over.name}.local`,
      hypervisor: { kind: 'sim', version: '1.0' },
      cpu: { model: 'Sim CPU', cores: 4 },
      memory: { totalMB: 8192, usedMB: 1024 },
      datastores: [{ name: 'ds1', capacityGB: 100, freeGB: 40 }],
      networks: ['VM Network'],
      agentVersion: '0.1.0',
      uptimeSec: 90_000,
      agentUptimeSec: 3_700,
    },
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
    vmId: op.kind === 'vm.create' ? null : op.vmId,
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
    state.log.push({ line: `${req.method} ${u.pathname}${u.search}`, auth: req.headers.authorization, body, lastEventId });
    const path = u.pathname.replace(/^\/api\/v1/, '');
    const m = (re: RegExp) => re.exec(path);

    if (req.method === 'POST' && path === '/auth/login') {
      const { username, password } = body as { username: string; password: string };
      const user = state.users.find((x) => x.username === username && x.password === password);
      if (!user) return fail(res, 401, 'invalid_credentials', 'invalid username or password');
      return send(res, 200, { token: VALID_TOKEN, expiresAt: '2030-01-01T00:00:00.000Z', user: publicUser(user) });
    }
    if (req.headers.authorization !== `Bearer ${VALID_TOKEN}`) return fail(res, 401, 'unauthorized', 'invalid token');
    if (req.method === 'POST' && path === '/auth/logout') return send(res, 204);
    if (req.method === 'GET' && path === '/auth/me') return send(res, 200, publicUser(state.users[0]!));

    if (req.method === 'GET' && path === '/devices') {
      const name = u.searchParams.get('name')?.toLowerCase();
      const tag = u.searchParams.get('tag');
      const presence = u.searchParams.get('presence');
      const items = state.devices.filter(
        (d) => (!name || d.name.toLowerCase().includes(name)) && (!tag || d.tags.includes(tag)) && (!presence || d.presence === presence),
      );
      return send(res, 200, page(items, u));
    }
    let g = m(/^\/devices\/([^/]+)$/);
    if (g) {
      const i = state.devices.findIndex((d) => d.id === decodeURIComponent(g![1]!));
      if (i < 0) return fail(res, 404, 'not_found', 'device not found');
      if (req.method === 'GET') return send(res, 200, state.devices[i]);
      if (req.method === 'PATCH') {
        state.devices[i] = { ...state.devices[i]!, ...(body as object) };
        return send(res, 200, state.devices[i]);
      }
      if (req.method === 'DELETE') {
        state.devices.splice(i, 1);
        return send(res, 204);
      }
    }
    g = m(/^\/devices\/([^/]+)\/vms(?:\/([^/]+)(\/power)?)?$/);
    if (g) {
      const d = state.devices.find((x) => x.id === decodeURIComponent(g![1]!));
      if (!d) return fail(res, 404, 'not_found', 'device not found');
      const vmId = g[2] === undefined ? undefined : decodeURIComponent(g[2]);
      if (vmId === undefined && req.method === 'GET') return send(res, 200, d.vms);
      if (vmId === undefined && req.method === 'POST') return send(res, 202, createTask(d.id, { kind: 'vm.create', spec: body as never }, u));
      if (vmId !== undefined && g[3] && req.method === 'POST') {
        return send(res, 202, createTask(d.id, { kind: 'vm.power', vmId, action: (body as { action: never }).action }, u));
      }
      if (vmId !== undefined && !g[3] && req.method === 'PATCH') return send(res, 202, createTask(d.id, { kind: 'vm.update', vmId, patch: body as never }, u));
      if (vmId !== undefined && !g[3] && req.method === 'DELETE') return send(res, 202, createTask(d.id, { kind: 'vm.delete', vmId }, u));
    }
    if (req.method === 'GET' && path === '/tasks') {
      const q = (k: string) => u.searchParams.get(k);
      const items = state.tasks
        .filter((t) => (!q('deviceId') || t.deviceId === q('deviceId')) && (!q('vmId') || t.vmId === q('vmId')))
        .filter((t) => (!q('state') || t.state === q('state')) && (!q('kind') || t.kind === q('kind')))
        .reverse();
      return send(res, 200, page(items, u));
    }
    g = m(/^\/tasks\/([^/]+)(\/cancel|\/retry)?$/);
    if (g) {
      const t = state.tasks.find((x) => x.id === decodeURIComponent(g![1]!));
      if (!t) return fail(res, 404, 'not_found', 'task not found');
      if (req.method === 'GET' && !g[2]) return send(res, 200, t);
      if (req.method === 'POST' && g[2] === '/cancel') {
        if (FINAL.includes(t.state)) return fail(res, 409, 'task_final', `task ${t.id} is already ${t.state}`);
        const patch: Partial<Task> =
          t.state === 'queued' ? { state: 'cancelled', finishedAt: new Date().toISOString() } : { cancelRequested: true };
        return send(res, 202, updateTask(t.id, patch));
      }
      if (req.method === 'POST' && g[2] === '/retry') {
        if (!['failed', 'cancelled', 'timed_out'].includes(t.state)) return fail(res, 409, 'task_not_retryable', `task ${t.id} is ${t.state}`);
        return send(res, 201, createTask(t.deviceId, t.operation, u, { retryOf: t.retryOf ?? t.id, attempt: t.attempt + 1 }));
      }
    }
    if (req.method === 'GET' && path === '/events') {
      if (!state.sse.enabled) return fail(res, 404, 'not_found', `no route GET ${path}`);
      const taskId = u.searchParams.get('taskId');
      const deviceId = u.searchParams.get('deviceId');
      const wants = (e: LiveEvent): boolean => {
        if (taskId) return e.type === 'task' && e.task.id === taskId;
        if (!deviceId) return true;
        return e.type === 'task' ? e.task.deviceId === deviceId : e.type === 'vms' ? e.deviceId === deviceId : e.device.id === deviceId;
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
    if (req.method === 'GET' && path === '/users') return send(res, 200, page(state.users.map(publicUser), u));
    if (req.method === 'POST' && path === '/users') {
      const b = body as { username: string; password: string; role: User['role'] };
      const user = { id: `u${state.users.length + 1}`, createdAt: new Date().toISOString(), ...b };
      state.users.push(user);
      return send(res, 201, publicUser(user));
    }
    g = m(/^\/users\/([^/]+)$/);
    if (g) {
      const i = state.users.findIndex((x) => x.id === g![1]);
      if (i < 0) return fail(res, 404, 'not_found', 'user not found');
      if (req.method === 'PATCH') {
        state.users[i] = { ...state.users[i]!, ...(body as object) };
        return send(res, 200, publicUser(state.users[i]!));
      }
      if (req.method === 'DELETE') {
        state.users.splice(i, 1);
        return send(res, 204);
      }
    }
    if (req.method === 'GET' && path === '/enrollment-tokens') return send(res, 200, page(state.tokens, u));
    if (req.method === 'POST' && path === '/enrollment-tokens') {
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
    g = m(/^\/enrollment-tokens\/([^/]+)$/);
    if (g && req.method === 'DELETE') {
      const t = state.tokens.find((x) => x.id === g![1]);
      if (!t) return fail(res, 404, 'not_found', 'enrollment token not found');
      t.revoked = true;
      return send(res, 204);
    }
    return fail(res, 404, 'not_found', `no route ${req.method} ${path}`);
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
