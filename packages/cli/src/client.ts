/**
 * A typed client for the manager's REST API (/api/v1). It knows HTTP and the wire types only —
 * no printing, no config files — so tests and the benchmarks can use it directly.
 */
import type {
  CreateEnrollmentToken,
  CreateUser,
  CreatedEnrollmentToken,
  Device,
  DevicePatch,
  DeviceQuery,
  EnrollmentToken,
  LoginResponse,
  PageOf,
  UpdateUser,
  User,
} from '@pallas/protocol';
import { PALLAS_VERSION } from '@pallas/protocol';
import { ApiRequestError, NetworkError } from './errors.js';

export interface ClientOptions {
  /** Base URL of the manager, e.g. `https://pallas.example.com`; a path prefix is kept. */
  server: string;
  /** Bearer token from `login`; default none (only `login` works without one). */
  token?: string | undefined;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
}

export interface PageQuery {
  limit?: number;
  offset?: number;
}

type Query = Record<string, string | number | undefined>;

/** The largest page the API serves (`Paging.limit.maximum` in the protocol). */
export const MAX_PAGE = 1000;

export class PallasClient {
  readonly server: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: ClientOptions) {
    this.server = opts.server.replace(/\/+$/, '');
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#fetch = opts.fetch ?? fetch;
  }

  /** The bearer token in use, if any (logout compares it with the saved one). */
  get token(): string | undefined {
    return this.#token;
  }

  // --- auth
  login(username: string, password: string): Promise<LoginResponse> {
    return this.request('POST', '/auth/login', { body: { username, password } });
  }
  logout(): Promise<void> {
    return this.request('POST', '/auth/logout');
  }
  me(): Promise<User> {
    return this.request('GET', '/auth/me');
  }

  // --- users (admin only)
  listUsers(q: PageQuery = {}): Promise<PageOf<User>> {
    return this.request('GET', '/users', { query: { ...q } });
  }
  createUser(body: CreateUser): Promise<User> {
    return this.request('POST', '/users', { body });
  }
  getUser(id: string): Promise<User> {
    return this.request('GET', `/users/${enc(id)}`);
  }
  updateUser(id: string, body: UpdateUser): Promise<User> {
    return this.request('PATCH', `/users/${enc(id)}`, { body });
  }
  deleteUser(id: string): Promise<void> {
    return this.request('DELETE', `/users/${enc(id)}`);
  }

  // --- devices
  listDevices(q: DeviceQuery = {}): Promise<PageOf<Device>> {
    return this.request('GET', '/devices', { query: { ...q } });
  }
  getDevice(id: string): Promise<Device> {
    return this.request('GET', `/devices/${enc(id)}`);
  }
  updateDevice(id: string, body: DevicePatch): Promise<Device> {
    return this.request('PATCH', `/devices/${enc(id)}`, { body });
  }
  /** Decommission: remove the device from the fleet. */
  deleteDevice(id: string): Promise<void> {
    return this.request('DELETE', `/devices/${enc(id)}`);
  }

  // --- enrollment tokens
  listEnrollmentTokens(q: PageQuery = {}): Promise<PageOf<EnrollmentToken>> {
    return this.request('GET', '/enrollment-tokens', { query: { ...q } });
  }
  createEnrollmentToken(body: CreateEnrollmentToken): Promise<CreatedEnrollmentToken> {
    return this.request('POST', '/enrollment-tokens', { body });
  }
  revokeEnrollmentToken(id: string): Promise<void> {
    return this.request('DELETE', `/enrollment-tokens/${enc(id)}`);
  }

  /**
   * Every item of a paged listing, fetched page by page. Stops on a short or empty page too,
   * so a total that changes underneath (devices enrolling) cannot loop forever.
   */
  async all<T>(list: (q: PageQuery) => Promise<PageOf<T>>, pageSize = MAX_PAGE): Promise<PageOf<T>> {
    const items: T[] = [];
    let total = 0;
    for (;;) {
      const page = await list({ limit: pageSize, offset: items.length });
      items.push(...page.items);
      total = page.total;
      if (page.items.length === 0 || page.items.length < pageSize || items.length >= total) break;
    }
    return { items, total: Math.max(total, items.length), limit: items.length || 1, offset: 0 };
  }

  /** One API call. Resolves to the decoded JSON body, or undefined for 204. */
  async request<T>(method: string, path: string, opts: { body?: unknown; query?: Query } = {}): Promise<T> {
    const url = new URL(`${this.server}/api/v1${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': `pallas-cli/${PALLAS_VERSION}`,
    };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';

    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw new NetworkError(this.server, err);
    }
    if (!res.ok) throw toApiError(res, text);
    if (res.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiRequestError(res.status, 'bad_response', `the server at ${this.server} sent a response that is not JSON`);
    }
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

/** Map an error response to ApiRequestError, also when a proxy in front answered with HTML. */
function toApiError(res: Response, text: string): ApiRequestError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const e = body.error;
    if (e && typeof e.message === 'string' && e.message !== '') {
      return new ApiRequestError(res.status, typeof e.code === 'string' ? e.code : 'error', e.message);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  const reason = res.statusText ? ` ${res.statusText}` : '';
  return new ApiRequestError(res.status, `http_${res.status}`, `the server answered HTTP ${res.status}${reason}`);
}
