import { AppError } from '../../../errors.js';
import { clearSessionCookies, setSessionCookies } from '../cookies.js';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function authRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'login', async (req, reply) => {
    const { username, password, cookie } = req.body;
    req.audit = { actor: { kind: 'anonymous', name: username }, target: { kind: 'user', id: username, name: username } };
    let attempt;
    try {
      // Counted before the password is hashed: parallel guesses cannot all pass (issue #15).
      attempt = await ctx.throttle.begin(username, req.ip);
    } catch (err) {
      req.audit.action = 'login.throttled';
      throw err;
    }
    let res;
    try {
      res = await ctx.sessions.login(username, password);
    } catch (err) {
      const wrong = err instanceof AppError && err.code === 'invalid_credentials';
      await attempt.settle(wrong ? 'wrong' : 'not-checked');
      if (wrong) req.audit.action = 'login.failed';
      throw err;
    }
    await attempt.settle('right');
    req.audit = {
      action: 'login.ok',
      actor: { kind: 'user', id: res.user.id, name: res.user.username },
      target: { kind: 'user', id: res.user.id, name: res.user.username },
      detail: { via: cookie ? 'cookie' : 'bearer' },
    };
    if (!cookie) return res;
    const csrfToken = setSessionCookies(req, reply, res.token!, res.expiresAt);
    // The session secret stays in the HttpOnly cookie: page scripts never see it.
    return { expiresAt: res.expiresAt, user: res.user, csrfToken };
  });

  serve(app, ctx, 'logout', async (req, reply) => {
    if (req.credential === 'api-token') throw new AppError('invalid_request', 'an API token is not a session: revoke it with `pallas api-tokens revoke <id>`');
    await ctx.sessions.logout(req.bearer!);
    if (req.credential === 'cookie') clearSessionCookies(req, reply);
    return reply.status(204).send();
  });

  serve(app, ctx, 'me', async (req) => req.user!);
}
