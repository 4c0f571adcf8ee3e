import type { Role, User } from '@pallas/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import type { SessionsService } from '../../services/auth/sessions-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, set by `authenticate` on every route that is not public. */
    user?: User;
    bearer?: string;
  }
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

/**
 * Builds the hook that lets a request through only for users whose role is at least
 * `minimum`. Roles are ordered viewer < operator < admin. Routes run it `onRequest`, before
 * the body is parsed and validated: a caller without the right role learns 401/403, never
 * what is wrong with its input.
 */
export function requireRole(sessions: SessionsService, minimum: Role) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const token = bearerOf(request);
    if (!token) throw new AppError('unauthorized', 'missing bearer token: log in with POST /api/v1/auth/login');
    const user = await sessions.verify(token);
    if (!user) throw new AppError('unauthorized', 'invalid or expired token: log in again');
    if (RANK[user.role] < RANK[minimum]) {
      throw new AppError('forbidden', `this needs the ${minimum} role; you are ${user.role}`);
    }
    request.user = user;
    request.bearer = token;
  };
}

export type Guard = (minimum: Role) => ReturnType<typeof requireRole>;
