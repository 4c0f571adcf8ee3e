import { API_ERROR_STATUS, type ApiErrorCode } from '@pallas/protocol';

/**
 * The errors the manager reports to callers: the protocol's registry of codes (clients branch
 * on the same list), each with a fixed HTTP status; the message says what was wrong in words
 * an operator can act on.
 */
export const ERROR_STATUS = API_ERROR_STATUS;
export type ErrorCode = ApiErrorCode;

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
