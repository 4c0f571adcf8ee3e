/**
 * A tiny in-memory stand-in for the manager's REST API, enough to drive the CLI in tests.
 * It follows the protocol's shapes; the real manager is covered by the end-to-end tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Device, EnrollmentToken, User } from '@pallas/protocol';

export interface FakeManager {
  url: string;
  devices: Device[];
  users: (User & { password: string })[];
  tokens: EnrollmentToken[];
  /** Requests seen, as "METHOD /path?query" plus the Authorization header. */
  log: { line: string; auth: string | undefined; body: unknown }[];
  close(): Promise<void>;
}

export const VALID_TOKEN = 'sess-123';

export function device(over: Partial<Device> & { id: string; name: string }): Device {
  return {
    tags: [],
    presence: 'online',
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

export async function startFakeManager(): Promise<FakeManager> {
  const state: Omit<FakeManager, 'url' | 'close'> = {
    devices: [],
    users: [{ id: 'u1', username: 'admin', role: 'admin', createdAt: '2025-01-01T00:00:00.000Z', password: 'secret-pw' }],
    tokens: [],
    log: [],
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
    state.log.push({ line: `${req.method} ${u.pathname}${u.search}`, auth: req.headers.authorization, body });
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
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
