import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../../errors.js';

/** PostgreSQL's SQLSTATE for a character the database encoding cannot hold (a NUL in UTF-8 text). */
const PG_CHARACTER_NOT_IN_REPERTOIRE = '22021';

type ValidationIssue = { instancePath?: string; schemaPath?: string; message?: string; params?: Record<string, unknown> };

/** "body.vcpus: must be >= 1" — names the field an operator has to fix. */
function describeValidation(context: string | undefined, issues: ValidationIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid request';
  const path = (first.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
  const extra = Array.isArray(first.params?.additionalProperties) ? ` (${(first.params.additionalProperties as string[]).join(', ')})`
    : Array.isArray(first.params?.requiredProperties) ? ` (${(first.params.requiredProperties as string[]).join(', ')})` : '';
  // TypeBox reports a property forbidden by `additionalProperties: false` as "schema is
  // false" at that property's path; say what it means.
  const message = first.schemaPath?.endsWith('/additionalProperties') ? 'is not an allowed property' : first.message ?? 'is invalid';
  return `${[context ?? 'request', path].filter(Boolean).join('.')}: ${message}${extra}`;
}

/**
 * Turns every error into `{error: {code, message}}` with the right status. Unknown errors
 * become a 500 with a generic message; the details go to the log, never to the caller.
 */
export function errorHandler(logger: Logger, maxBodyBytes?: number) {
  return (error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let status = 500;
    let code = 'internal';
    let message = 'internal error; see the manager log';
    if (error instanceof AppError) {
      status = error.status;
      code = error.code;
      message = error.message;
      if (error.headers) void reply.headers(error.headers);
    } else if ('validation' in error && Array.isArray(error.validation)) {
      status = 400;
      code = 'invalid_request';
      message = describeValidation(error.validationContext, error.validation as ValidationIssue[]);
    } else if ((error as { code?: unknown }).code === PG_CHARACTER_NOT_IN_REPERTOIRE) {
      // PostgreSQL refuses text holding U+0000 (SQLite stores it): the client's text, not a
      // server fault. Found by the REST fuzzer's PostgreSQL pass (GET /users/%00 was a 500).
      status = 400;
      code = 'invalid_request';
      message = 'text with a NUL character (U+0000) is not accepted';
    } else if ('code' in error && typeof error.statusCode === 'number' && error.statusCode < 500) {
      status = error.statusCode;
      switch (error.code) {
        case 'FST_ERR_CTP_BODY_TOO_LARGE': code = 'payload_too_large'; message = maxBodyBytes ? `request body is larger than the limit of ${maxBodyBytes} bytes (maxBodyBytes)` : 'request body is too large'; break;
        case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': code = 'unsupported_media_type'; message = 'send JSON (Content-Type: application/json)'; break;
        case 'FST_ERR_CTP_EMPTY_JSON_BODY': code = 'invalid_json'; message = 'request body is empty'; break;
        default:
          code = error.statusCode === 400 && /JSON/i.test(error.message) ? 'invalid_json' : 'invalid_request';
          message = code === 'invalid_json' ? 'request body is not valid JSON' : error.message;
      }
    }
    if (status >= 500) logger.error({ err: error, url: request.url, method: request.method }, 'request failed');
    void reply.status(status).send({ error: { code, message } });
  };
}
