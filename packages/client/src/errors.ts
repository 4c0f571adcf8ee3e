import type { ApiErrorCode } from '@pallas/protocol/constants';

/**
 * The manager answered with an error status. `code` is the API's own (`not_found`,
 * `forbidden`, `task_final`…; the list is `API_ERROR_STATUS` in the protocol), or `http_error`
 * when something else answered (a proxy's error page); branch on it, never on the message.
 */
export class PallasApiError extends Error {
  override readonly name = 'PallasApiError';
  readonly status: number;
  readonly code: ApiErrorCode | 'http_error' | (string & {});
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** An error answer as the manager sends it (`{error: {code, message}}`), or what a proxy sent. */
  static from(status: number, statusText: string, text: string): PallasApiError {
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      const e = body.error;
      if (e && typeof e.message === 'string') return new PallasApiError(status, typeof e.code === 'string' ? e.code : 'http_error', e.message);
    } catch {
      // not the API's JSON: a proxy's page, say
    }
    return new PallasApiError(status, 'http_error', `the manager answered ${status} ${statusText}`.trim());
  }
}

/** The manager could not be reached at all (refused, DNS, TLS, cut, timed out). */
export class PallasNetworkError extends Error {
  override readonly name = 'PallasNetworkError';
  readonly server: string;
  constructor(server: string, cause: unknown) {
    super(`could not reach the Pallas manager${server ? ` at ${server}` : ''} (${describeCause(cause)})`, { cause });
    this.server = server;
  }
}

/** Whether waiting and trying again may help: the network, a 5xx, a 429 or a 408. */
export function isTransient(err: unknown): boolean {
  if (err instanceof PallasNetworkError) return true;
  return err instanceof PallasApiError && (err.status >= 500 || err.status === 429 || err.status === 408);
}

/**
 * fetch() reports every transport failure as "fetch failed" and hides the reason in `cause`
 * (often an AggregateError from happy-eyeballs), so dig out the first errno-style code.
 */
function describeCause(cause: unknown): string {
  const seen = new Set<unknown>();
  let cur: unknown = cause;
  while (cur && typeof cur === 'object' && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (e.name === 'TimeoutError') return 'timed out';
    if (typeof e.code === 'string' && e.code !== 'UND_ERR_SOCKET') return e.code;
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      cur = e.errors[0];
      continue;
    }
    if (e.cause === undefined) return typeof e.message === 'string' && e.message ? e.message : 'network error';
    cur = e.cause;
  }
  return 'network error';
}
