/**
 * A typed client for the manager's REST API (/api/v1). It knows HTTP and the wire types only —
 * no printing, no config files — so tests and the benchmarks can use it directly.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform } from 'node:stream';
import type {
  AgentUpdateRequest,
  DevicePatchRequest,
  ApiToken,
  Artifact,
  ArtifactQuery,
  SignedArtifact,
  SigningKey,
  UploadArtifactQuery,
  AuditEntry,
  AuditQuery,
  BulkTaskRequest,
  CreateApiToken,
  CreatedApiToken,
  BulkTaskResponse,
  CreateEnrollmentToken,
  CreateUser,
  CreatedEnrollmentToken,
  Device,
  DevicePatch,
  DeviceQuery,
  EnrollmentToken,
  LiveEvent,
  LoginResponse,
  PageOf,
  PowerAction,
  Task,
  TaskOptions,
  TaskQuery,
  UpdateUser,
  User,
  Vm,
  VmDeploy,
  VmPatch,
  VmSpec,
} from '@pallas/protocol';
import { PALLAS_VERSION } from '@pallas/protocol';
import { ApiRequestError, NetworkError } from './errors.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';

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

/** Filters of `GET /events`: only one task's events, or one device's. */
export interface EventQuery {
  taskId?: string;
  deviceId?: string;
}

/**
 * What `openEvents` yields: the manager's live events, plus `reset` when events may have been
 * missed (the manager could not replay them, or the stream had no id to resume from): reload.
 */
export type StreamedEvent = LiveEvent | { type: 'reset' };

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
  /** Device security: approve (pending → active), block, unblock, or rotate its credential. */
  deviceAction(id: string, action: 'approve' | 'block' | 'unblock' | 'rotate-credential'): Promise<Device> {
    return this.request('POST', `/devices/${enc(id)}/${action}`, { body: {} });
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

  // --- API tokens (for automation) and the audit log
  listApiTokens(q: PageQuery & { all?: boolean } = {}): Promise<PageOf<ApiToken>> {
    const { all, ...page } = q;
    return this.request('GET', '/api-tokens', { query: { ...page, ...(all ? { all: 'true' } : {}) } });
  }
  createApiToken(body: CreateApiToken): Promise<CreatedApiToken> {
    return this.request('POST', '/api-tokens', { body });
  }
  revokeApiToken(id: string): Promise<void> {
    return this.request('DELETE', `/api-tokens/${enc(id)}`);
  }
  listAudit(q: AuditQuery = {}): Promise<PageOf<AuditEntry>> {
    return this.request('GET', '/audit', { query: { ...q } });
  }

  // --- artifacts
  listArtifacts(q: ArtifactQuery = {}): Promise<PageOf<Artifact>> {
    return this.request('GET', '/artifacts', { query: { ...q } });
  }
  getArtifact(id: string): Promise<SignedArtifact> {
    return this.request('GET', `/artifacts/${enc(id)}`);
  }
  deleteArtifact(id: string): Promise<void> {
    return this.request('DELETE', `/artifacts/${enc(id)}`);
  }
  signingKey(): Promise<SigningKey> {
    return this.request('GET', '/signing-key');
  }

  /**
   * Upload a file as an artifact. The file is streamed from disk (never read whole) with its
   * length declared, so an oversized file is refused before it is sent; `onProgress` gets
   * the bytes handed to the socket so far. No timeout: a multi-GB upload takes what it takes.
   */
  async uploadArtifact(file: string, meta: UploadArtifactQuery, onProgress?: (sent: number, total: number) => void): Promise<SignedArtifact> {
    const { size } = await stat(file);
    const url = this.#url('/artifacts', { ...meta });
    const headers: Record<string, string> = { ...this.#headers('application/json'), 'content-type': 'application/octet-stream', 'content-length': String(size) };
    let sent = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sent += chunk.length;
        onProgress?.(sent, size);
        done(null, chunk);
      },
    });
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, { method: 'POST', headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: body }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new NetworkError(this.server, err)));
      const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
      source.on('error', (err) => {
        req.destroy();
        reject(err);
      });
      source.pipe(meter).pipe(req);
    });
    const fake = { ok: status >= 200 && status < 300, status, statusText: '' } as Response;
    if (!fake.ok) throw toApiError(fake, text);
    return JSON.parse(text) as SignedArtifact;
  }

  // --- VMs: reads are the manager's copy of the device's inventory; every change is a task
  listVms(deviceId: string): Promise<Vm[]> {
    return this.request('GET', `/devices/${enc(deviceId)}/vms`);
  }
  createVm(deviceId: string, spec: VmSpec, opts: TaskOptions = {}): Promise<Task> {
    return this.request('POST', `/devices/${enc(deviceId)}/vms`, { body: spec, query: { ...opts } });
  }
  deployVm(deviceId: string, request: VmDeploy, opts: TaskOptions = {}): Promise<Task> {
    return this.request('POST', `/devices/${enc(deviceId)}/vms/deploy`, { body: request, query: { ...opts } });
  }
  updateAgent(deviceId: string, request: AgentUpdateRequest, opts: TaskOptions = {}): Promise<Task> {
    return this.request('POST', `/devices/${enc(deviceId)}/agent-update`, { body: request, query: { ...opts } });
  }
  patchDevice(deviceId: string, request: DevicePatchRequest, opts: TaskOptions = {}): Promise<Task> {
    return this.request('POST', `/devices/${enc(deviceId)}/patch`, { body: request, query: { ...opts } });
  }
  powerVm(deviceId: string, vmId: string, action: PowerAction, opts: TaskOptions = {}): Promise<Task> {
    return this.request('POST', `/devices/${enc(deviceId)}/vms/${enc(vmId)}/power`, { body: { action }, query: { ...opts } });
  }
  updateVm(deviceId: string, vmId: string, patch: VmPatch, opts: TaskOptions = {}): Promise<Task> {
    return this.request('PATCH', `/devices/${enc(deviceId)}/vms/${enc(vmId)}`, { body: patch, query: { ...opts } });
  }
  deleteVm(deviceId: string, vmId: string, opts: TaskOptions = {}): Promise<Task> {
    return this.request('DELETE', `/devices/${enc(deviceId)}/vms/${enc(vmId)}`, { query: { ...opts } });
  }

  // --- tasks
  /** Newest first. */
  listTasks(q: TaskQuery = {}): Promise<PageOf<Task>> {
    return this.request('GET', '/tasks', { query: { ...q } });
  }
  getTask(id: string): Promise<Task> {
    return this.request('GET', `/tasks/${enc(id)}`);
  }
  /** A queued task is cancelled at once; a sent or running one gets `cancelRequested`. 409 if final. */
  cancelTask(id: string): Promise<Task> {
    return this.request('POST', `/tasks/${enc(id)}/cancel`);
  }
  /** A new attempt of a failed, cancelled or timed-out task (409 otherwise). */
  retryTask(id: string): Promise<Task> {
    return this.request('POST', `/tasks/${enc(id)}/retry`);
  }
  /** One operation on many devices. */
  createBulkTask(body: BulkTaskRequest): Promise<BulkTaskResponse> {
    return this.request('POST', '/tasks', { body });
  }

  /**
   * Subscribe to `GET /events`. Resolves once the stream is open (rejects if it cannot be
   * opened); then iterate it. It reconnects by itself with `Last-Event-ID`; stop it with
   * `close()`, the signal, or by leaving the loop.
   */
  async openEvents(q: EventQuery = {}, opts: EventStreamOptions = {}): Promise<AsyncIterable<StreamedEvent> & { close(): void }> {
    const url = this.#url('/events', { ...q });
    const stream = await EventStream.open(async (lastEventId, signal) => {
      const headers = this.#headers('text/event-stream');
      if (lastEventId) headers['last-event-id'] = lastEventId;
      // The request timeout must cover the response headers only: a signal given to fetch also
      // governs the body, and this body is meant to stay open (the stream's idle timeout guards it).
      const conn = new AbortController();
      const onClose = (): void => conn.abort(signal.reason);
      signal.addEventListener('abort', onClose, { once: true });
      const timer = setTimeout(() => conn.abort(new DOMException('the server did not answer', 'TimeoutError')), this.#timeoutMs);
      let res: Response;
      try {
        res = await this.#fetch(url, { headers, signal: conn.signal });
      } catch (err) {
        signal.removeEventListener('abort', onClose);
        throw new NetworkError(this.server, err);
      } finally {
        clearTimeout(timer);
      }
      if (!res.ok) throw toApiError(res, await res.text().catch(() => ''));
      if (!res.body || !/^text\/event-stream\b/i.test(res.headers.get('content-type') ?? '')) {
        await res.body?.cancel();
        throw new ApiRequestError(res.status, 'bad_response', `the server at ${this.server} did not answer with an event stream`);
      }
      return res.body;
    }, opts);
    return {
      close: () => stream.close(),
      async *[Symbol.asyncIterator]() {
        for await (const msg of stream) {
          const event = decodeLiveEvent(msg.event, msg.data);
          if (event) yield event;
        }
      },
    };
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
    const url = this.#url(path, opts.query);
    const headers = this.#headers('application/json');
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

  #url(path: string, query: Query = {}): URL {
    const url = new URL(`${this.server}/api/v1${path}`);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url;
  }

  #headers(accept: string): Record<string, string> {
    const headers: Record<string, string> = { accept, 'user-agent': `pallas-cli/${PALLAS_VERSION}` };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    return headers;
  }
}

/**
 * One SSE message as a live event. Unknown event types (a newer manager) and undecodable data
 * are skipped rather than fatal: a watcher should keep watching.
 */
function decodeLiveEvent(type: string, data: string): StreamedEvent | undefined {
  if (type === 'reset') return { type: 'reset' };
  if (type !== 'task' && type !== 'device' && type !== 'vms') return undefined;
  try {
    const value = JSON.parse(data) as { type?: unknown };
    return value && value.type === type ? (value as LiveEvent) : undefined;
  } catch {
    return undefined;
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
