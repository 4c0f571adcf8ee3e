import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/** API tokens for automation: each user manages their own; admins see and revoke anyone's. */
export async function apiTokenRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listApiTokens', async (req) => ctx.apiTokens.list(req.user!, req.query));

  serve(app, ctx, 'createApiToken', async (req, reply) => {
    req.audit = { detail: { name: req.body.name, role: req.body.role ?? req.user!.role, expiresInDays: req.body.expiresInDays ?? null } };
    // Tokens cannot make tokens: one could otherwise mint a child that outlives its expiry and
    // survives its revocation (issue #15 point 8). Creating a token takes a login session.
    if (req.credential === 'api-token') throw new AppError('forbidden', 'an API token cannot create API tokens: log in (pallas login) to create one');
    const created = await ctx.apiTokens.create(req.user!, req.body);
    req.audit.target = { kind: 'api-token', id: created.id, name: created.name };
    return reply.status(201).send(created);
  });

  serve(app, ctx, 'revokeApiToken', async (req, reply) => {
    req.audit = { target: { kind: 'api-token', id: req.params.id } };
    const revoked = await ctx.apiTokens.revoke(req.user!, req.params.id);
    req.audit.target = { kind: 'api-token', id: revoked.id, name: revoked.name };
    req.audit.detail = { owner: revoked.username };
    return reply.status(204).send();
  });
}
