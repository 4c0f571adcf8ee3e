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

/** The `code` of a CLI error in JSON (`--json`), by exit code; API errors keep the API's code. */
const CODE_OF_EXIT: Record<number, string> = {
  [ExitCode.usage]: 'usage', [ExitCode.taskFailed]: 'task_failed', [ExitCode.taskCancelled]: 'task_cancelled',
  [ExitCode.taskTimedOut]: 'task_timed_out', [ExitCode.interrupted]: 'interrupted',
};

/** A local file the CLI could not use, in words (`ENOENT` → "no such file"). */
function fileProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.path !== 'string') return undefined;
  switch (e.code) {
    case 'ENOENT': return `no such file: ${e.path}`;
    case 'EACCES': case 'EPERM': return `cannot read ${e.path}: permission denied`;
    case 'EISDIR': return `${e.path} is a directory, not a file`;
    default: return undefined;
  }
}

/**
 * One line for stderr (without the "pallas: " prefix), the exit code to use, and a code for
 * `--json` (the API's own code for an API error: `not_found`, `exceeds_host`, …).
 */
export function describeError(err: unknown): { message: string; exitCode: number; code: string } {
  return { code: errorCode(err), ...describe(err) };
}

function errorCode(err: unknown): string {
  if (err instanceof PallasApiError) return err.status === 401 && !/API token/.test(err.message) ? 'unauthorized' : err.code;
  if (err instanceof PallasNetworkError) return 'network_error';
  if (err instanceof CliError) return CODE_OF_EXIT[err.exitCode] ?? 'error';
  if (fileProblem(err)) return 'file_error';
  return 'unexpected';
}

function describe(err: unknown): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof PallasApiError) {
    // A 401 outside `login` means the saved token is missing, expired or revoked; the server's
    // own wording ("invalid token") would not tell the operator what to do about it.
    // An API token (PALLAS_TOKEN) is different: "logging in" does not fix it, and the server
    // says exactly what is wrong with it (unknown, revoked on …, expired on …).
    if (err.status === 401) return { message: /API token/.test(err.message) ? oneLine(err.message) : NOT_LOGGED_IN, exitCode: ExitCode.error };
    return { message: oneLine(err.code === 'invalid_request' ? validationInWords(err.message) : err.message), exitCode: ExitCode.error };
  }
  if (err instanceof PallasNetworkError) return { message: err.message, exitCode: ExitCode.error };
  const file = fileProblem(err);
  if (file) return { message: file, exitCode: ExitCode.error };
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${oneLine(message)}`, exitCode: ExitCode.error };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}


const RULES: Array<[RegExp, (field: string, m: RegExpExecArray) => string]> = [
  [/^must not have fewer than (\d+) characters$/i, (f, m) => `the ${f} needs at least ${m[1]} character${m[1] === '1' ? '' : 's'}`],
  [/^must not have more than (\d+) characters$/i, (f, m) => `the ${f} can have at most ${m[1]} characters`],
  [/^must not have fewer than (\d+) items$/i, (f, m) => `the ${f} needs at least ${m[1]} item${m[1] === '1' ? '' : 's'}`],
  [/^must not have more than (\d+) items$/i, (f, m) => `the ${f} can have at most ${m[1]} items`],
  [/^must be >= (\S+)$/, (f, m) => `the ${f} must be at least ${m[1]}`],
  [/^must be <= (\S+)$/, (f, m) => `the ${f} must be at most ${m[1]}`],
  [/^must be > (\S+)$/, (f, m) => `the ${f} must be more than ${m[1]}`],
  [/^must be < (\S+)$/, (f, m) => `the ${f} must be less than ${m[1]}`],
  [/^must match pattern ".*"$/, (f) => `the ${f} has characters or a form that is not allowed`],
  [/^must be equal to one of the allowed values$/, (f) => `the ${f} is not one of the allowed values`],
  [/^must be (integer|number|string|boolean|object|array)$/, (f, m) => `the ${f} must be ${m[1] === 'integer' ? 'a whole number' : m[1] === 'array' ? 'a list' : `a${m[1] === 'object' || m[1] === 'integer' ? 'n' : ''} ${m[1]}`}`],
  [/^is not an allowed property$/, (f) => `${f} is not an option here`],
  [/^must have required properties (.+)$/, (f, m) => `${f ? `the ${f} ` : ''}needs ${m[1]!.split(', ').join(' and ')}`.replace(/^needs/, 'it needs')],
];

/**
 * The manager names the field and the schema rule ("body.password: must not have fewer than 12
 * characters"): fine for a developer, not a sentence for an operator. Turns the rules it knows
 * into one ("the password needs at least 12 characters") and leaves anything else as it was.
 */
export function validationInWords(message: string): string {
  const m = /^(body|query|querystring|params|headers|request)(?:\.([\w.[\]-]+))?: (.+?)(?: \(([^)]*)\))?$/.exec(message.trim());
  if (!m) return message;
  const field = (m[2] ?? '').replaceAll('.', ' ').replace(/([a-z])([A-Z])/g, (_, a: string, b: string) => `${a} ${b.toLowerCase()}`);
  const rule = m[3]!;
  if (/^is not an allowed property$/.test(rule) && m[4]) return `${m[4]} ${m[4].includes(',') ? 'are not options' : 'is not an option'} here`;
  if (/^must have required properties/.test(rule)) return RULES.at(-1)![1](field, /^must have required properties (.+)$/.exec(rule)!);
  for (const [re, say] of RULES) {
    const r = re.exec(rule);
    if (r) return field ? say(field, r) : message;
  }
  return message;
}
