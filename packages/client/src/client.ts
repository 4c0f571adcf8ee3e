/**
 * `PallasClient`: every REST route of a manager, typed from the protocol's route table, over
 * `fetch` (Node.js 20+ and browsers). It knows HTTP and the wire types only — no printing, no
 * config files — so the CLI, the web console, tests and operators' scripts share it.
 */
import { PAGE_LIMITS } from '@pallas/protocol/constants';
import {
  API_PREFIX, ROUTES, fillPath,
  type JsonRouteName, type PagedRouteName, type PageItem, type RouteBody, type RouteName, type RouteParams, type RouteQuery, type RouteResult,
} from '@pallas/protocol/routes';
import type { EventsQuery, LiveEvent, LoginResponse, Task } from '@pallas/protocol';
import { PallasApiError, PallasNetworkError } from './errors.js';
import { followEventStream, RECONNECTED_WITHOUT_ID, type FollowOptions, type FollowedStream } from './event-stream.js';
import { Session } from './session.js';
import { downloadArtifact, uploadArtifact, type Download, type DownloadOptions, type UploadOptions } from './transfer.js';
import { waitForTasks, type WaitOptions } from './wait.js';

export interface PallasClientOptions {
  /**
   * The manager's base URL, e.g. `https://pallas.example.com` (a path prefix is kept); `''` in
   * a page the manager serves, for URLs relative to it.
   */
  server: string;
  /** A bearer token: a session from `login`, or an API token (`pat_…`). Default none. */
  token?: string | undefined;
  /** Use the console's cookie session (HttpOnly cookie + CSRF header) instead of a token. Default false. */
  cookies?: boolean;
  /** Per-request timeout, until the answer's headers for streams; default 30 s. */
  timeoutMs?: number;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Sent as `User-Agent` where the platform lets a script set it (not browsers); default `pallas-client`. */
  userAgent?: string;
  /** Called when the manager refuses the credentials (401) of any call but `login`: the session ended. */
  onUnauthorized?: () => void;
}

/** A route's input: path parameters, query and body, each where the route has one. */
export type CallInput<R extends RouteName> = { query?: RouteQuery<R>; signal?: AbortSignal }
  & (RouteParams<R> extends undefined ? { params?: undefined } : { params: RouteParams<R> })
  & (RouteBody<R> extends undefined ? { body?: undefined } : object extends RouteBody<R> ? { body?: RouteBody<R> } : { body: RouteBody<R> });
/** Optional when nothing in it is required. */
export type CallArgs<R extends RouteName> = object extends CallInput<R> ? [input?: CallInput<R>] : [input: CallInput<R>];

/**
 * What the live stream yields: the manager's events, and `reset` when events may have been
 * missed (the manager could not replay them after a reconnect): reload what is shown.
 */
export type LiveMessage = LiveEvent | { type: 'reset' };
export interface LiveStream extends AsyncIterable<LiveMessage> {
  readonly opened: Promise<void>;
  readonly lastEventId: string;
  close(): void;
}

type Query = Record<string, unknown> | undefined;

export class PallasClient {
  readonly server: string;
  readonly #session: Session;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #userAgent: string;
  readonly #onUnauthorized: (() => void) | undefined;

  constructor(opts: PallasClientOptions) {
    this.server = opts.server.replace(/\/+$/, '');
    this.#session = new Session({ token: opts.token, cookies: opts.cookies });
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#userAgent = opts.userAgent ?? 'pallas-client';
    this.#onUnauthorized = opts.onUnauthorized;
  }

  /** Logs in with a password and returns a client that carries the session. */
  static async login(opts: PallasClientOptions & { username: string; password: string }): Promise<PallasClient> {
    const client = new PallasClient(opts);
    await client.login(opts.username, opts.password);
    return client;
  }

  /** The bearer token in use, if any (a cookie session has none the client can see). */
  get token(): string | undefined {
    return this.#session.token;
  }

  /** Logs in; from then on this client acts as that user (a bearer session, or the cookie one). */
  async login(username: string, password: string): Promise<LoginResponse> {
    const cookie = this.#session.usesCookies;
    const res = await this.call('login', { body: { username, password, ...(cookie ? { cookie: true } : {}) } });
    if (!cookie) this.#session.token = res.token;
    return res;
  }

  /** Ends the session on the manager and forgets it here. */
  async logout(): Promise<void> {
    try {
      await this.call('logout');
    } finally {
      this.#session.forget();
    }
  }

  /** The URL of a route: `/api/v1` + its path with `params` filled in + the defined `query` values. */
  url<R extends RouteName>(name: R, params?: RouteParams<R>, query?: RouteQuery<R>): string {
    const path = fillPath(ROUTES[name].path, params as Record<string, string> | undefined);
    return `${this.server}${API_PREFIX}${path}${queryString(query as Query)}`;
  }

  /** One call of a JSON route: resolves to its answer (undefined for 204), or rejects with PallasApiError/PallasNetworkError. */
  async call<R extends JsonRouteName>(name: R, ...[input]: CallArgs<R>): Promise<RouteResult<R>> {
    const i = (input ?? {}) as { params?: RouteParams<R>; query?: RouteQuery<R>; body?: unknown; signal?: AbortSignal };
    const spec = ROUTES[name];
    const { status, text } = await this.request(spec.method, this.url(name, i.params, i.query), {
      ...(i.body !== undefined ? { body: JSON.stringify(i.body), type: 'application/json' } : {}),
      ...(i.signal ? { signal: i.signal } : {}),
      isLogin: name === 'login',
    });
    if (status === 204 || text === '') return undefined as RouteResult<R>;
    try {
      return JSON.parse(text) as RouteResult<R>;
    } catch {
      throw new PallasApiError(status, 'bad_response', `the manager at ${this.server} sent an answer that is not JSON`);
    }
  }

  /** Every page of a paged listing, in order; `pageSize` defaults to the largest the API serves. */
  async *pages<R extends PagedRouteName>(name: R, input?: CallInput<R>, pageSize: number = PAGE_LIMITS.max): AsyncGenerator<RouteResult<R>> {
    let offset = 0;
    for (;;) {
      const query = { ...(input?.query as object), limit: pageSize, offset } as RouteQuery<R>;
      const page = (await this.call(name, ...([{ ...input, query }] as CallArgs<R>))) as { items: unknown[]; total: number };
      yield page as RouteResult<R>;
      offset += page.items.length;
      // Also stops on a short or empty page, so a total that changes underneath (devices
      // enrolling) cannot loop forever.
      if (page.items.length === 0 || page.items.length < pageSize || offset >= page.total) return;
    }
  }

  /** Every item of a paged listing, fetched page by page. */
  async all<R extends PagedRouteName>(name: R, input?: CallInput<R>, pageSize?: number): Promise<Array<PageItem<R>>> {
    const items: Array<PageItem<R>> = [];
    for await (const page of this.pages(name, input, pageSize)) items.push(...(page as { items: Array<PageItem<R>> }).items);
    return items;
  }

  /**
   * Uploads an artifact: a File or Blob (browser), bytes, or a stream with `opts.size`. In a
   * browser the progress is the bytes sent; `@pallas/client/node` uploads a file by path.
   */
  upload(meta: RouteQuery<'uploadArtifact'>, data: Blob | Uint8Array | ReadableStream<Uint8Array>, opts?: UploadOptions): Promise<RouteResult<'uploadArtifact'>> {
    return uploadArtifact(this, meta, data, opts);
  }

  /** Downloads an artifact's bytes as a stream, from `opts.offset` to resume. */
  download(id: string, opts?: DownloadOptions): Promise<Download> {
    return downloadArtifact(this, id, opts);
  }

  /**
   * The audit log as a file (`GET /audit/export`, admin): every entry the filters match, newest
   * first, as CSV (default) or a JSON array. Resolves once the headers are in; read the body as
   * it streams (`res.body`), it is never held whole here.
   */
  exportAudit(query: RouteQuery<'exportAudit'> = {}, opts: { signal?: AbortSignal } = {}): Promise<Response> {
    const accept = query.format === 'json' ? 'application/json' : 'text/csv';
    return this.send('GET', this.url('exportAudit', undefined, query), { accept, ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  /** Waits until a task is final (from the live stream, or by polling without one) and resolves with it. */
  async waitForTask(id: string, opts?: WaitOptions): Promise<Task> {
    return (await waitForTasks(this, [id], opts))[0]!;
  }

  /** Waits until every task is final; resolves with them in the order of `ids`. */
  waitForTasks(ids: readonly string[], opts?: WaitOptions): Promise<Task[]> {
    return waitForTasks(this, ids, opts);
  }

  /** Adds the session's credentials to a request's headers (for a transport of one's own, e.g. XMLHttpRequest). */
  authorize(method: string, headers: Record<string, string>): void {
    this.#session.apply(method, headers);
  }

  /**
   * Follows the live event stream (`GET /events`, optionally one task's or one device's). It
   * connects at once; `opened` says when. After a drop it reconnects by itself and resumes
   * from the last event id, yielding `reset` when the manager could not replay what was missed.
   */
  events(query: EventsQuery = {}, opts: FollowOptions = {}): LiveStream {
    const raw = this.followRaw(query, opts);
    return {
      opened: raw.opened,
      get lastEventId() { return raw.lastEventId; },
      close: () => raw.close(),
      async *[Symbol.asyncIterator]() {
        for await (const m of raw) {
          const message = decodeLiveMessage(m.event, m.data);
          if (message) yield message;
        }
      },
    };
  }

  /**
   * The live stream's messages undecoded (`event`, `data`, `id`), for a reader that wants to
   * skip most of them before paying for JSON.parse (the benchmarks' watcher).
   */
  followRaw(query: EventsQuery = {}, opts: FollowOptions = {}): FollowedStream {
    const url = this.url('followEvents', undefined, query);
    return followEventStream(async (lastEventId, signal) => {
      const res = await this.send('GET', url, { accept: 'text/event-stream', lastEventId, signal });
      if (!res.body || !/^text\/event-stream\b/i.test(res.headers.get('content-type') ?? '')) {
        await res.body?.cancel();
        throw new PallasApiError(res.status, 'bad_response', `the manager at ${this.server} did not answer with an event stream`);
      }
      return res.body;
    }, opts);
  }

  /**
   * One HTTP exchange with the session's credentials, for a streamed answer (a download, an
   * event stream): resolves to the successful response once its headers are in (the timeout
   * covers only that, so a long body is not cut), or rejects with PallasApiError (after reading
   * the error body) or PallasNetworkError.
   */
  async send(method: string, url: string, opts: SendOptions = {}): Promise<Response> {
    const { res, done } = await this.#exchange(method, url, opts);
    done();
    return res;
  }

  /** Like `send`, for an answer read whole: the timeout covers the body too. */
  async request(method: string, url: string, opts: SendOptions = {}): Promise<{ status: number; text: string }> {
    const { res, done } = await this.#exchange(method, url, opts);
    try {
      return { status: res.status, text: await this.#text(res) };
    } finally {
      done();
    }
  }

  async #exchange(method: string, url: string, opts: SendOptions): Promise<{ res: Response; done: () => void }> {
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json', ...opts.headers };
    if ((globalThis as { document?: unknown }).document === undefined) headers['user-agent'] = this.#userAgent;
    if (opts.type) headers['content-type'] = opts.type;
    if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
    this.#session.apply(method, headers);
    // The timeout is a controller of our own, stopped once it has nothing left to guard; the
    // caller's signal goes on governing the whole exchange, body included.
    const timeout = new AbortController();
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => timeout.abort(new DOMException('the manager did not answer in time', 'TimeoutError')), timeoutMs)
      : undefined;
    const done = (): void => clearTimeout(timer);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        signal,
        cache: 'no-store',
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        // A streamed request body (an upload) needs this in Node's fetch.
        ...(opts.duplex ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      done();
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new PallasNetworkError(this.server, err);
    }
    this.#session.remember(res);
    if (!res.ok) {
      const text = await this.#text(res).catch(() => '');
      done();
      if (res.status === 401 && !opts.isLogin) this.#onUnauthorized?.();
      throw PallasApiError.from(res.status, res.statusText, text);
    }
    return { res, done };
  }

  async #text(res: Response): Promise<string> {
    try {
      return await res.text();
    } catch (err) {
      throw new PallasNetworkError(this.server, err);
    }
  }
}

export interface SendOptions {
  body?: RequestInit['body'];
  /** The body's Content-Type. */
  type?: string;
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  lastEventId?: string;
  /** A 401 here is a wrong password, not a lost session: no `onUnauthorized`. */
  isLogin?: boolean;
  /** The body is a stream. */
  duplex?: boolean;
  /** Overrides the client's timeout (Infinity: none, for uploads that take what they take). */
  timeoutMs?: number;
}

/** `?a=1&b=x` from the defined values; arrays repeat the key. */
function queryString(query: Query): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) search.append(key, String(v));
  }
  const s = search.toString();
  return s ? `?${s}` : '';
}

/**
 * One SSE message as a live message. Unknown event types (a newer manager) and undecodable
 * data are skipped rather than fatal: a watcher keeps watching.
 */
function decodeLiveMessage(type: string, data: string): LiveMessage | undefined {
  if (type === 'reset' || type === RECONNECTED_WITHOUT_ID) return { type: 'reset' };
  if (type !== 'task' && type !== 'device' && type !== 'vms' && type !== 'rollout') return undefined;
  try {
    const value = JSON.parse(data) as LiveEvent;
    return value.type === type ? value : undefined;
  } catch {
    return undefined;
  }
}
