import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/**
 * Users. Admins manage everyone; any user may read themselves and change their own password
 * (giving the current one), but never their own role.
 */
export async function userRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listUsers', async (req) => ctx.users.list(req.query.limit, req.query.offset));

  serve(app, ctx, 'createUser', async (req) => {
    req.audit = { target: { kind: 'user', id: req.body.username, name: req.body.username }, detail: { role: req.body.role } };
    const user = await ctx.users.create(req.body);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    return user;
  });

  serve(app, ctx, 'getUser', async (req) => {
    if (req.user!.role !== 'admin' && req.params.id !== req.user!.id) throw new AppError('forbidden', 'only admins may see other users');
    return ctx.users.get(req.params.id);
  });

  serve(app, ctx, 'updateUser', async (req) => {
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
      // Throttled like a login: an open session must not become an unlimited guessing oracle.
      const attempt = await ctx.throttle.begin(caller.username, req.ip);
      const right = Boolean(await ctx.users.authenticate(caller.username, req.body.currentPassword));
      await attempt.settle(right ? 'right' : 'wrong');
      if (!right) throw new AppError('forbidden', 'body.currentPassword: is wrong');
    }
    const { currentPassword: _unused, ...patch } = req.body;
    if (Object.keys(patch).length === 0) throw new AppError('invalid_request', 'body: nothing to change (give password or role)');
    const user = await ctx.users.update(req.params.id, patch);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    return user;
  });

  serve(app, ctx, 'deleteUser', async (req) => {
    req.audit = { target: { kind: 'user', id: req.params.id } };
    const user = await ctx.users.get(req.params.id);
    req.audit.target = { kind: 'user', id: user.id, name: user.username };
    await ctx.users.remove(req.params.id);
  });
}
