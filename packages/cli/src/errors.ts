import { PallasApiError, PallasNetworkError } from '@pallas/client';

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

export const NOT_LOGGED_IN = 'not logged in or session expired: run `pallas login`';

/** One line for stderr (without the "pallas: " prefix) and the exit code to use. */
export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof PallasApiError) {
    // A 401 outside `login` means the saved token is missing, expired or revoked; the server's
    // own wording ("invalid token") would not tell the operator what to do about it.
    // An API token (PALLAS_TOKEN) is different: "logging in" does not fix it, and the server
    // says exactly what is wrong with it (unknown, revoked on …, expired on …).
    if (err.status === 401) return { message: /API token/.test(err.message) ? oneLine(err.message) : NOT_LOGGED_IN, exitCode: ExitCode.error };
    return { message: oneLine(err.message), exitCode: ExitCode.error };
  }
  if (err instanceof PallasNetworkError) return { message: err.message, exitCode: ExitCode.error };
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${oneLine(message)}`, exitCode: ExitCode.error };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

