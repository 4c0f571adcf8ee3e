import type { EnrollRequest, EnrollResponse } from '@pallas/protocol';
import type { Logger } from '../util/line-logger.js';
import { checkApiError, checkEnrollResponse } from '../checks/index.js';
import { AgentError, AgentErrorCodes, describeError } from '../errors.js';
import { Backoff, sleep, type BackoffOptions } from '../util/backoff.js';

/** Path of the enrollment call, relative to the manager's base URL. */
export const ENROLL_PATH = '/api/v1/enroll';

/**
 * An enrollment attempt that failed. `retriable` is false for a 4xx (other than 408/429):
 * the manager looked at the request and said no, so asking again would not change that.
 */
export class EnrollmentAttemptError extends Error {
  override readonly name = 'EnrollmentAttemptError';
  constructor(
    message: string,
    readonly retriable: boolean,
    /** HTTP status, when the manager answered at all. */
    readonly status?: number,
    /** The manager's `{code, message}`, when it sent the standard error body. */
    readonly serverError?: { code: string; message: string },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function enrollUrl(manager: string): string {
  const base = new URL(manager);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new AgentError(AgentErrorCodes.CONFIG_INVALID, `manager URL must be http(s), got ${manager}`);
  }
  // Keep a path prefix (a manager behind a reverse proxy at https://host/pallas/).
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${ENROLL_PATH}`;
}

/** One POST /api/v1/enroll. Throws EnrollmentAttemptError on any failure. */
export async function requestEnrollment(
  manager: string,
  request: EnrollRequest,
  options: { timeoutMs?: number; signal?: AbortSignal; ca?: string } = {},
): Promise<EnrollResponse> {
  const url = enrollUrl(manager);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let res: { ok: boolean; status: number };
  let text: string;
  try {
    ({ res, text } = await postJson(url, JSON.stringify(request), signal, options.ca));
  } catch (err) {
    if (options.signal?.aborted) throw err; // stopping, not a network problem
    throw new EnrollmentAttemptError(`cannot reach ${url}: ${describeError((err as Error).cause ?? err)}`, true, undefined, undefined, { cause: err });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.ok) {
    const parsed = await checkEnrollResponse.validate(body);
    // A 2xx that is not an EnrollResponse usually comes from something in between (a captive
    // portal, a proxy error page) rather than from the manager: worth another try later.
    if (!parsed.ok) throw new EnrollmentAttemptError(`unexpected enrollment response from ${url}: ${parsed.error}`, true, res.status);
    if (parsed.value.deviceId !== request.deviceId) {
      throw new EnrollmentAttemptError(`manager answered for device ${parsed.value.deviceId}, not ${request.deviceId}`, false, res.status);
    }
    return parsed.value;
  }
  const apiError = checkApiError.check(body) ? body.error : undefined;
  const detail = apiError ? `${apiError.code}: ${apiError.message}` : `HTTP ${res.status}`;
  const retriable = res.status >= 500 || res.status === 408 || res.status === 429;
  throw new EnrollmentAttemptError(`enrollment refused by ${url} (${res.status} ${detail})`, retriable, res.status, apiError && { code: apiError.code, message: apiError.message });
}

export interface EnrollOptions {
  manager: string;
  request: EnrollRequest;
  logger: Logger;
  /** Delays between attempts. Default base 1 s, cap 30 s, full jitter. */
  backoff?: BackoffOptions;
  /** PEM CA to trust, alone, for an https manager URL (`--ca`). Default: the system's CAs. */
  ca?: string;
  /** Per-request timeout in ms. Default 15000. */
  timeoutMs?: number;
  /** Aborting it ends the retries; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Wraps every HTTP attempt; the fleet simulator passes a semaphore here to bound the
   * enrollments in flight. Default: call directly.
   */
  gate?: <T>(attempt: () => Promise<T>) => Promise<T>;
  /** Called after each retriable failure, before sleeping `delayMs`. */
  onRetry?: (err: EnrollmentAttemptError, attempt: number, delayMs: number) => void;
}

/**
 * Enrolls, retrying network errors and 5xx for as long as it takes. A final refusal (4xx)
 * becomes an AgentError `enrollment_rejected` whose message carries the server's code and text.
 */
export async function enroll(options: EnrollOptions): Promise<EnrollResponse> {
  const backoff = new Backoff({ baseMs: 1000, capMs: 30_000, ...options.backoff });
  const gate = options.gate ?? (<T>(fn: () => Promise<T>) => fn());
  for (;;) {
    try {
      return await gate(() => requestEnrollment(options.manager, options.request, { timeoutMs: options.timeoutMs, signal: options.signal, ...(options.ca ? { ca: options.ca } : {}) }));
    } catch (err) {
      if (!(err instanceof EnrollmentAttemptError)) throw err;
      if (!err.retriable) {
        throw new AgentError(AgentErrorCodes.ENROLLMENT_REJECTED, err.message, { cause: err, serverError: err.serverError });
      }
      const attempt = backoff.attempt + 1;
      const delayMs = backoff.next();
      options.logger.warn({ attempt, delayMs, err: err.message }, 'enrollment failed; will retry');
      options.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

// Loaded at the first enrollment, once (an import() per call is a module resolution per call).
let httpModule: Promise<typeof import('node:http')> | undefined;
let httpsModule: Promise<typeof import('node:https')> | undefined;

/**
 * One JSON POST, through node:http or node:https rather than fetch: fetch loads undici and
 * compiles its WebAssembly HTTP parser, some 20 MB that an agent would keep for as long as it
 * runs after enrolling (docs/benchmarks.md, "Agent footprint"). With a pinned CA, `ca`
 * replaces the system's CAs: only the manager's CA is trusted. A 307/308 redirect is followed
 * (at most 5), with the same method and body, as fetch did; other redirects are answered as
 * they are (fetch turned them into a GET, which cannot enroll either).
 */
export async function postJson(url: string, body: string, signal: AbortSignal, ca: string | undefined, redirects = 5): Promise<{ res: { ok: boolean; status: number }; text: string }> {
  const https = url.startsWith('https:');
  const { request } = await (https ? (httpsModule ??= import('node:https')) : (httpModule ??= import('node:http')));
  const answer = await new Promise<{ status: number; location: string | undefined; text: string }>((resolve, reject) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = request(url, { method: 'POST', signal, headers, ...(https && ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // The shape of fetch's failures ("fetch failed", the cause beside it), so the caller's
    // message names the cause as before. An abort rejects with the signal's reason, as fetch's.
    req.on('error', (err) => reject(signal.aborted ? signal.reason : Object.assign(new Error('fetch failed'), { cause: err })));
    req.end(body);
  });
  if ((answer.status === 307 || answer.status === 308) && answer.location && redirects > 0) {
    return postJson(new URL(answer.location, url).href, body, signal, ca, redirects - 1);
  }
  return { res: { ok: answer.status >= 200 && answer.status < 300, status: answer.status }, text: answer.text };
}
