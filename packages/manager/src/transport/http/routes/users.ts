import Type from 'typebox';
import { CreateUser, IdParam, Page, Paging, UpdateUser, User } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function userRoutes(app: App, ctx: RouteContext): Promise<void> {
  const admin = ctx.guard('admin');

  app.get('/users', {
    schema: { tags: ['users'], summary: 'List users', querystring: Type.Object(Paging), response: { 200: Page(User) } },
    onRequest: admin,
  }, async (req) => ctx.users.list(req.query.limit, req.query.offset));

  app.post('/users', {
    schema: { tags: ['users'], summary: 'Create a user', body: CreateUser, response: { 201: User } },
    onRequest: admin,
  }, async (req, reply) => reply.status(201).send(await ctx.users.create(req.body)));

  app.get('/users/:id', {
    schema: { tags: ['users'], summary: 'Get a user', params: IdParam, response: { 200: User } },
    onRequest: admin,
  }, async (req) => ctx.users.get(req.params.id));

  app.patch('/users/:id', {
    schema: { tags: ['users'], summary: 'Change role or password', params: IdParam, body: UpdateUser, response: { 200: User } },
    onRequest: admin,
  }, async (req) => ctx.users.update(req.params.id, req.body));

  app.delete('/users/:id', {
    schema: { tags: ['users'], summary: 'Delete a user', params: IdParam },
    onRequest: admin,
  }, async (req, reply) => {
    await ctx.users.remove(req.params.id);
    return reply.status(204).send();
  });
}
