import { timingSafeEqual } from 'node:crypto';
import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';

/** Whether `header` is `Bearer <token>`, compared in constant time. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header ?? '');
  const wanted = Buffer.from(`Bearer ${token}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** Liveness, readiness and metrics: outside /api/v1, unauthenticated, as probes expect. */
export async function healthRoutes(app: App, ctx: RouteContext & { metricsToken?: string | undefined }): Promise<void> {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      await ctx.store.ping();
      checks.store = 'ok';
    } catch (err) {
      checks.store = (err as Error).message;
    }
    const broker = ctx.broker.health();
    checks.broker = broker.ok ? 'ok' : (broker.detail ?? 'not ok');
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    // Optional: metrics name devices and routes; a scraper presents the token (docs/manager.md).
    if (ctx.metricsToken && !bearerMatches(req.headers.authorization, ctx.metricsToken)) {
      throw new AppError('unauthorized', 'metrics need Authorization: Bearer <the manager\'s metricsToken>');
    }
    // An external broker's connections are not this manager's to count: the gauge stays unset.
    const connected = ctx.broker.connectedCount();
    if (connected !== null) ctx.metrics.devicesConnected.set(connected);
    // Read at scrape time (one grouped query): the gauge is the store's view, whichever manager
    // made each change. A store that does not answer leaves the last values.
    const byPresence = await ctx.fleet.devicesByPresence().catch(() => null);
    if (byPresence) for (const [presence, n] of Object.entries(byPresence)) ctx.metrics.devicesByPresence.set({ presence }, n);
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}
