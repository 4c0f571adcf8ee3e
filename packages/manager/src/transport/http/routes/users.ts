import Type from 'typebox';
import { CreateUser, IdParam, Page, Paging, UpdateUser, User } from '@pallas/protocol';
import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';

/**
 * Users. Admins manage everyone; any user may read themselves and change their own password
 * (giving the current one), but never their own role.
 */
export async function userRoutes(app: App, ctx: RouteContext): Promise<void> {
  const admin = ctx.guard('admin');
  const anyone = ctx.guard('viewer');

  app.get('/users', {
    schema: { tags: ['users'], summary: 'List users (admin)', querystring: Type.Object(Paging, { additionalProperties: false }), response: { 200: Page(User) } },
    onRequest: admin,
  }, async (req) => ctx.users.list(req.query.limit, req.query.offset));

  app.post('/users', {
    schema: { tags: ['users'], summary: 'Create a user (admin)', body: CreateUser, response: { 201: User } },
    onRequest: admin,
    config: { auditAction: 'user.create' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'user', id: req.body.username, name: req.body.username }, detail: { role: req.body.role } };
    const user = await ctx.users.create(req.body);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    return reply.status(201).send(user);
  });

  app.get('/users/:id', {
    schema: { tags: ['users'], summary: 'Get a user (admin, or yourself)', params: IdParam, response: { 200: User } },
    onRequest: anyone,
  }, async (req) => {
    if (req.user!.role !== 'admin' && req.params.id !== req.user!.id) throw new AppError('forbidden', 'only admins may see other users');
    return ctx.users.get(req.params.id);
  });

  app.patch('/users/:id', {
    schema: {
      tags: ['users'],
      summary: 'Change role or password (admin); change your own password (anyone, with currentPassword)',
      params: IdParam, body: UpdateUser, response: { 200: User },
    },
    onRequest: anyone,
    config: { auditAction: 'user.update' },
  }, async (req) => {
    const caller = req.user!;
    req.audit = { target: { kind: 'user', id: req.params.id }, detail: { fields: Object.keys(req.body).filter((k) => k !== 'currentPassword') } };
    if (caller.role !== 'admin') {
      if (req.params.id !== caller.id) throw new AppError('forbidden', "only admins may change other users");
      if (req.body.role !== undefined) throw new AppError('forbidden', 'only admins may change roles, including their own');
    }
    if (req.credential === 'api-token' && req.body.password !== undefined) {
      throw new AppError('forbidden', 'passwords cannot be changed with an API token: log in');
    }
    // Changing your own password proves you know the current one (a stolen session is not enough).
    if (req.params.id === caller.id && req.body.password !== undefined) {
      if (!req.body.currentPassword) throw new AppError('invalid_request', 'body.currentPassword: is required to change your own password');
      if (!(await ctx.users.authenticate(caller.username, req.body.currentPassword))) {
        throw new AppError('forbidden', 'body.currentPassword: is wrong');
      }
    }
    const { currentPassword: _unused, ...patch } = req.body;
    if (Object.keys(patch).length === 0) throw new AppError('invalid_request', 'body: nothing to change (give password or role)');
    const user = await ctx.users.update(req.params.id, patch);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    return user;
  });

  app.delete('/users/:id', {
    schema: { tags: ['users'], summary: 'Delete a user and their sessions and API tokens (admin)', params: IdParam },
    onRequest: admin,
    config: { auditAction: 'user.delete' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'user', id: req.params.id } };
    const user = await ctx.users.get(req.params.id);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    await ctx.users.remove(req.params.id);
    return reply.status(204).send();
  });
}
