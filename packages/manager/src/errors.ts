/**
 * One registry of the errors the manager reports to callers. Each code has a fixed HTTP
 * status; the message says what was wrong in words an operator can act on.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  enrollment_token_invalid: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  device_id_conflict: 409,
  device_state_conflict: 409,
  task_final: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Response headers that go with the error, e.g. `retry-after` on a 429. */
  readonly headers: Record<string, string> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.headers = options?.headers;
  }
}

export const notFound = (what: string, id: string): AppError => new AppError('not_found', `${what} ${id} not found`);
