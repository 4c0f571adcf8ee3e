import { LoginRequest, LoginResponse, User } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function authRoutes(app: App, ctx: RouteContext): Promise<void> {
  app.post('/auth/login', {
    schema: { tags: ['auth'], summary: 'Log in; returns a bearer token', body: LoginRequest, response: { 200: LoginResponse } },
  }, async (req) => ctx.sessions.login(req.body.username, req.body.password));

  app.post('/auth/logout', {
    schema: { tags: ['auth'], summary: 'End this session' },
    onRequest: ctx.guard('viewer'),
  }, async (req, reply) => {
    await ctx.sessions.logout(req.bearer!);
    return reply.status(204).send();
  });

  app.get('/auth/me', {
    schema: { tags: ['auth'], summary: 'The logged-in user', response: { 200: User } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => req.user!);
}
