import type { App, RouteContext } from '../context.js';

/** Liveness, readiness and metrics: outside /api/v1, unauthenticated, as probes expect. */
export async function healthRoutes(app: App, ctx: RouteContext): Promise<void> {
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

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    // An external broker's connections are not this manager's to count: the gauge stays unset.
    const connected = ctx.broker.connectedCount();
    if (connected !== null) ctx.metrics.devicesConnected.set(connected);
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}
