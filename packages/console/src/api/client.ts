import { authHeaders } from '../auth/session.js';

/** An API call that failed, with the manager's own code and message (`{error: {code, message}}`). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when the manager says the session is no longer valid (set by the auth provider). */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: (() => void) | undefined): void {
  onUnauthorized = handler;
}

export const API_BASE = '/api/v1';

async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message) return new ApiError(res.status, body.error.code ?? 'error', body.error.message);
  } catch {
    /* not the API's JSON: a proxy's page, say */
  }
  return new ApiError(res.status, 'http_error', `the manager answered ${res.status} ${res.statusText}`.trim());
}

/** One REST call: JSON in, JSON out, errors as ApiError with a message a person can read. */
export async function request<T>(method: string, path: string, body?: unknown, init: { signal?: AbortSignal } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${API_BASE}${path}`, {
      method,
      headers: { ...authHeaders(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'cannot reach the manager; check your connection and try again');
  }
  if (!res.ok) {
    const error = await errorFrom(res);
    // A failed login is also a 401, but that is the user's answer to show, not a lost session.
    if (res.status === 401 && !path.startsWith('/auth/login')) onUnauthorized?.();
    throw error;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A readable sentence for anything thrown, for the places that show errors. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** `?a=1&b=x` from the defined, non-empty values only. */
export function queryString(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const s = search.toString();
  return s ? `?${s}` : '';
}
