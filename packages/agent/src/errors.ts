/**
 * Every error the agent raises on purpose has a code from this registry, so callers
 * (the `pallas-agent` program, the fleet simulator, tests) branch on codes, not on messages.
 */
export const AgentErrorCodes = {
  /** Flags, environment or config file are invalid. The program exits with status 2. */
  CONFIG_INVALID: 'config_invalid',
  /** `--driver` names no driver at all. */
  DRIVER_UNKNOWN: 'driver_unknown',
  /** The state dir holds a file the agent cannot use (corrupt JSON, foreign device id). */
  STATE_INVALID: 'state_invalid',
  /** No credential yet, and no manager URL or token to enroll with. */
  ENROLLMENT_NOT_CONFIGURED: 'enrollment_not_configured',
  /** The manager refused the enrollment (4xx); retrying would not help. */
  ENROLLMENT_REJECTED: 'enrollment_rejected',
  /**
   * The broker refused the credential: the manager decommissioned the device or revoked its
   * credential. The agent marked itself retired and stopped; it does not re-enroll by itself.
   */
  CREDENTIAL_REJECTED: 'credential_rejected',
  /** The state dir is marked retired (`retired.json`); only `reEnroll` brings the device back. */
  DEVICE_RETIRED: 'device_retired',
} as const;
export type AgentErrorCode = (typeof AgentErrorCodes)[keyof typeof AgentErrorCodes];

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly code: AgentErrorCode;
  /** The manager's `{error: {code, message}}` when the error comes from its answer. */
  readonly serverError: { code: string; message: string } | undefined;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown; serverError?: { code: string; message: string } }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.serverError = options?.serverError;
  }
}

export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** A short, single-line description of any thrown value, for logs and stderr. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.replaceAll('\n', ' ');
  return String(err);
}
