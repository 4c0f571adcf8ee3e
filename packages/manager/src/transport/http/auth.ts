import type { Role, User } from '@pallas/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { API_TOKEN_PREFIX, roleAtLeast, type ApiTokensService } from '../../services/api-tokens/api-tokens-service.js';
import type { AuditActor, AuditTarget } from '../../services/audit/audit-service.js';
import type { SessionsService } from '../../services/auth/sessions-service.js';
import { CSRF_HEADER, SESSION_COOKIE, csrfMatches, parseCookies } from './cookies.js';

/** How a caller proved who it is. */
export type Credential = 'session' | 'cookie' | 'api-token';

/** What a route adds to the audit record of its request (see audit-hook.ts). */
export interface RequestAudit {
  action?: string;
  target?: AuditTarget;
  detail?: Record<string, unknown>;
  /** Overrides the authenticated caller, e.g. the device at enrollment or the user at login. */
  actor?: AuditActor;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, set by `authenticate` on every route that is not public. */
    user?: User;
    /** The session secret (bearer or cookie), for logout. */
    bearer?: string;
    credential?: Credential;
    /** Set when the caller used an API token. */
    apiToken?: { id: string; name: string };
    audit?: RequestAudit;
    /** The API error a refused or failed call answered with, for its audit record (audit-hook.ts). */
    auditError?: { code: string; message: string };
  }
  interface FastifyContextConfig {
    /** The audit action of a state-changing route, e.g. `user.create`. */
    auditAction?: string;
    /** The body is an upload's raw bytes: the slow-body rule of uploads applies (slow-body.ts). */
    uploadBody?: boolean;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

/**
 * A state-changing request authenticated by cookie must come from our own page: it carries
 * the session's CSRF token in `x-csrf-token` (a cross-site form cannot set headers), and an
 * `Origin`, when the browser sends one, names this host.
 */
function checkCsrf(request: FastifyRequest, sessionToken: string): void {
  if (SAFE_METHODS.has(request.method)) return;
  const origin = request.headers.origin;
  if (origin) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== request.headers.host) throw new AppError('forbidden', `cross-origin request refused (Origin ${origin})`);
  }
  const presented = request.headers[CSRF_HEADER];
  if (!csrfMatches(sessionToken, typeof presented === 'string' ? presented : undefined)) {
    throw new AppError('forbidden', `missing or wrong ${CSRF_HEADER} header: the console sends the pallas_csrf cookie's value`);
  }
}

export interface Authenticator {
  sessions: SessionsService;
  apiTokens: ApiTokensService;
}

/** Finds the caller: a bearer session, a bearer API token (`pat_…`), or the console's cookie. */
export async function authenticate(auth: Authenticator, request: FastifyRequest): Promise<void> {
  const bearer = bearerOf(request);
  if (bearer?.startsWith(`${API_TOKEN_PREFIX}_`)) {
    const principal = await auth.apiTokens.verify(bearer);
    request.user = principal.user;
    request.apiToken = principal.token;
    request.credential = 'api-token';
    return;
  }
  if (bearer) {
    const user = await auth.sessions.verify(bearer);
    if (!user) throw new AppError('unauthorized', 'invalid or expired token: log in again');
    request.user = user;
    request.bearer = bearer;
    request.credential = 'session';
    return;
  }
  const cookie = parseCookies(request.headers.cookie)[SESSION_COOKIE];
  if (cookie) {
    const user = await auth.sessions.verify(cookie);
    if (!user) throw new AppError('unauthorized', 'your session has ended: log in again');
    checkCsrf(request, cookie);
    request.user = user;
    request.bearer = cookie;
    request.credential = 'cookie';
    return;
  }
  throw new AppError('unauthorized', 'missing credentials: log in with `pallas login` (REST: POST /api/v1/auth/login), or send Authorization: Bearer <token>');
}

/**
 * Builds the hook that lets a request through only for callers whose role is at least
 * `minimum`. Roles are ordered viewer < operator < admin. Routes run it `onRequest`, before
 * the body is parsed and validated: a caller without the right role learns 401/403, never
 * what is wrong with its input.
 */
export function requireRole(auth: Authenticator, minimum: Role) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    await authenticate(auth, request);
    const user = request.user!;
    if (!roleAtLeast(user.role, minimum)) {
      throw new AppError('forbidden', `this needs the ${minimum} role; you are ${user.role}`);
    }
  };
}

/** The audit actor for an authenticated request (anonymous when there is none). */
export function actorOf(request: FastifyRequest): AuditActor {
  if (request.audit?.actor) return request.audit.actor;
  if (request.apiToken && request.user) return { kind: 'token', id: request.apiToken.id, name: request.user.username };
  if (request.user) return { kind: 'user', id: request.user.id, name: request.user.username };
  return { kind: 'anonymous' };
}

export type Guard = (minimum: Role) => ReturnType<typeof requireRole>;
