import { ApiToken, ApiTokenQuery, CreateApiToken, CreatedApiToken, IdParam, Page } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

/** API tokens for automation: each user manages their own; admins see and revoke anyone's. */
export async function apiTokenRoutes(app: App, ctx: RouteContext): Promise<void> {
  const anyone = ctx.guard('viewer');

  app.get('/api-tokens', {
    schema: { tags: ['api-tokens'], summary: 'List your API tokens (admins: `all=true` for everyone\'s); secrets are never shown', querystring: ApiTokenQuery, response: { 200: Page(ApiToken) } },
    onRequest: anyone,
  }, async (req) => ctx.apiTokens.list(req.user!, req.query));

  app.post('/api-tokens', {
    schema: { tags: ['api-tokens'], summary: 'Create an API token with at most your role; its secret is in this response only', body: CreateApiToken, response: { 201: CreatedApiToken } },
    onRequest: anyone,
    config: { auditAction: 'token.create' },
  }, async (req, reply) => {
    req.audit = { detail: { name: req.body.name, role: req.body.role ?? req.user!.role, expiresInDays: req.body.expiresInDays ?? null } };
    const created = await ctx.apiTokens.create(req.user!, req.body);
    req.audit.target = { kind: 'api-token', id: created.id, name: created.name };
    return reply.status(201).send(created);
  });

  app.delete('/api-tokens/:id', {
    schema: { tags: ['api-tokens'], summary: 'Revoke an API token (yours; admins: anyone\'s)', params: IdParam },
    onRequest: anyone,
    config: { auditAction: 'token.revoke' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'api-token', id: req.params.id } };
    const revoked = await ctx.apiTokens.revoke(req.user!, req.params.id);
    req.audit.target = { kind: 'api-token', id: revoked.id, name: revoked.name };
    req.audit.detail = { owner: revoked.username };
    return reply.status(204).send();
  });
}
