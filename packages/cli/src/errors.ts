/**
 * Errors the CLI knows how to explain in one line. Anything else is a bug and is reported as
 * "unexpected error" — still without a stack trace unless PALLAS_DEBUG is set.
 */

/** Exit codes, documented in docs/cli.md. */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  /** A task that `--wait` or `tasks watch` followed ended `failed`. */
  taskFailed: 3,
  /** … ended `cancelled`. */
  taskCancelled: 4,
  /** … ended `timed_out` (its deadline passed first). */
  taskTimedOut: 5,
  /** Ctrl-C at a prompt, as shells report SIGINT (128 + 2). */
  interrupted: 130,
} as const;

/** A failure with a message meant for the operator. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.error, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The command line itself is wrong (missing flag, bad value): exit 2, like commander's own. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = 'UsageError';
  }
}

/** The manager answered with an error status; `code` and `message` come from its `{error}` body. */
export class ApiRequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiRequestError';
    this.status = status;
    this.code = code;
  }
}

/** The manager could not be reached at all (refused, DNS, TLS, timeout). */
export class NetworkError extends Error {
  readonly server: string;
  constructor(server: string, cause: unknown) {
    super(`could not reach the Pallas server at ${server} (${describeCause(cause)})`, { cause });
    this.name = 'NetworkError';
    this.server = server;
  }
}

export const NOT_LOGGED_IN = 'not logged in or session expired: run `pallas login`';

/** One line for stderr (without the "pallas: " prefix) and the exit code to use. */
export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ApiRequestError) {
    // A 401 outside `login` means the saved token is missing, expired or revoked; the server's
    // own wording ("invalid token") would not tell the operator what to do about it.
    // An API token (PALLAS_TOKEN) is different: "logging in" does not fix it, and the server
    // says exactly what is wrong with it (unknown, revoked on …, expired on …).
    if (err.status === 401) return { message: /API token/.test(err.message) ? oneLine(err.message) : NOT_LOGGED_IN, exitCode: ExitCode.error };
    return { message: oneLine(err.message), exitCode: ExitCode.error };
  }
  if (err instanceof NetworkError) return { message: err.message, exitCode: ExitCode.error };
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${oneLine(message)}`, exitCode: ExitCode.error };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
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
