/**
 * How a client proves who it is, on every request:
 * - a bearer token: a session from `login`, or an API token (`pat_…`) for automation;
 * - the console's cookie session: the browser holds the HttpOnly `pallas_session` cookie, and
 *   every state-changing request carries the session's CSRF token in `x-csrf-token`. Outside a
 *   browser (tests, scripts) the client keeps those two cookies itself.
 */
const SESSION_COOKIE = 'pallas_session';
const CSRF_COOKIE = 'pallas_csrf';
const CSRF_HEADER = 'x-csrf-token';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The page's cookies, where there is a page (`document` is not part of the Node typings). */
function documentCookie(): string | undefined {
  return (globalThis as { document?: { cookie?: string } }).document?.cookie;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export class Session {
  #token: string | undefined;
  readonly #cookies: boolean;
  /** Cookies kept by the client itself where no browser keeps them (name → value). */
  readonly #jar = new Map<string, string>();

  constructor(opts: { token?: string | undefined; cookies?: boolean | undefined }) {
    this.#token = opts.token;
    this.#cookies = opts.cookies === true;
  }

  get token(): string | undefined {
    return this.#token;
  }
  set token(value: string | undefined) {
    this.#token = value;
  }
  get usesCookies(): boolean {
    return this.#cookies;
  }

  /** Adds what proves the caller to a request's headers. */
  apply(method: string, headers: Record<string, string>): void {
    if (this.#token) {
      headers.authorization = `Bearer ${this.#token}`;
      return;
    }
    if (!this.#cookies) return;
    if (this.#jar.size > 0) headers.cookie = [...this.#jar].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
    if (!SAFE.has(method)) {
      const csrf = this.#jar.get(CSRF_COOKIE) ?? cookieValue(documentCookie(), CSRF_COOKIE);
      if (csrf) headers[CSRF_HEADER] = csrf;
    }
  }

  /** Keeps the session cookies a response sets, where no browser does (Node's fetch keeps none). */
  remember(res: Response): void {
    if (!this.#cookies || documentCookie() !== undefined) return;
    for (const line of res.headers.getSetCookie?.() ?? []) {
      const pair = line.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      if (name !== SESSION_COOKIE && name !== CSRF_COOKIE) continue;
      const value = cookieValue(pair, name);
      if (value) this.#jar.set(name, value);
      else this.#jar.delete(name); // cleared at logout
    }
  }

  forget(): void {
    this.#token = undefined;
    this.#jar.clear();
  }
}
