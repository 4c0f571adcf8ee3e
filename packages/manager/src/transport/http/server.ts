import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PALLAS_VERSION } from '@pallas/protocol';
import type { Logger } from 'pino';
import { TLS_CIPHERS } from '../../security/tls.js';
import type { App, RouteContext } from './context.js';
import { consoleRoutes } from './console.js';
import { errorHandler } from './errors.js';
import { registerAuditHook } from './audit-hook.js';
import { continueBeforeBody, holdContinue } from './expect-continue.js';
import { watchSlowBodies, type SlowBodyLimits } from './slow-body.js';
import { artifactRoutes, deviceDownloadRoutes } from './routes/artifacts.js';
import { apiTokenRoutes } from './routes/api-tokens.js';
import { auditRoutes } from './routes/audit.js';
import { authRoutes } from './routes/auth.js';
import { deviceRoutes } from './routes/devices.js';
import { deviceUpdateRoutes } from './routes/device-updates.js';
import { enrollmentRoutes } from './routes/enrollment.js';
import { eventRoutes } from './routes/events.js';
import { fleetRoutes } from './routes/fleet.js';
import { clusterRoutes } from './routes/cluster.js';
import { historyRoutes } from './routes/history.js';
import { groupRoutes } from './routes/groups.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { healthRoutes } from './routes/health.js';
import { taskRoutes } from './routes/tasks.js';
import { userRoutes } from './routes/users.js';
import { vmRoutes } from './routes/vms.js';

export const API_PREFIX = '/api/v1';

/**
 * Slow clients are cut (issue #15): request headers must be complete within 10 s; a connection
 * that sends and receives nothing for 60 s is closed (a body that stalls, an idle keep-alive).
 * Node's requestTimeout stays off: it would cut artifact uploads of gigabytes, which take what
 * they take. A body that trickles is cut by `watchSlowBodies` instead, with a rule per kind
 * of route (SlowBodyLimits).
 */
export const SLOW_CLIENT_TIMEOUTS: ServerOptions & { idleMs: number } = {
  headersTimeout: 10_000,
  requestTimeout: 0,
  // How often Node checks headersTimeout (its default, 30 s, would let headers trickle for 40 s).
  connectionsCheckingInterval: 1_000,
  idleMs: 60_000,
};

/** A year of HTTPS-only for browsers that reached us over HTTPS once. */
const HSTS = 'max-age=31536000';

/**
 * Headers every response carries, set on the raw response so that hijacked streams and errors
 * raised before routing have them too: no MIME sniffing; HSTS when served over HTTPS.
 */
function withSecurityHeaders(handler: RequestListener, https: boolean): RequestListener {
  return (req, res) => {
    res.setHeader('x-content-type-options', 'nosniff');
    if (https) res.setHeader('strict-transport-security', HSTS);
    handler(req, res);
  };
}

export interface RouteInfo {
  method: string;
  url: string;
}
const registered = new WeakMap<object, RouteInfo[]>();

/** Every route the server registered (method and URL pattern): the role matrix test walks them all. */
export function routesOf(app: object): RouteInfo[] {
  return registered.get(app) ?? [];
}

/** The HTTP transport: REST API under /api/v1, OpenAPI document, health and metrics, and the web console at `/`. */
export async function createHttpServer(
  ctx: RouteContext,
  opts: {
    logger: Logger; maxBodyBytes: number;
    /** Proxies whose X-Forwarded-For/-Proto are believed (comma-separated addresses or CIDRs). */
    trustProxy?: string | undefined;
    /** Serve HTTPS with this key and certificate. */
    tls?: { key: string; cert: string };
    /** Receives Fastify's request handler, so a plain HTTP server can serve the same routes. */
    onHandler?: (handler: RequestListener) => void;
    /** When set, /metrics needs this bearer token. */
    metricsToken?: string | undefined;
    /** How slowly a request body may arrive. */
    slowBody: SlowBodyLimits;
  },
): Promise<App> {
  const app = Fastify({
    serverFactory: (handler) => {
      opts.onHandler?.(withSecurityHeaders(handler as RequestListener, false));
      const https = withSecurityHeaders(handler as RequestListener, Boolean(opts.tls));
      const { idleMs, ...timeouts } = SLOW_CLIENT_TIMEOUTS;
      // Typed as a plain HTTP server: Fastify uses only what both kinds have.
      const server = (opts.tls
        ? createHttpsServer({ ...timeouts, key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true }, https)
        : createServer(timeouts, https)) as unknown as Server;
      server.setTimeout(idleMs);
      holdContinue(server);
      return server;
    },
    connectionTimeout: SLOW_CLIENT_TIMEOUTS.idleMs,
    loggerInstance: opts.logger.child({ component: 'http' }),
    // Per-request logs would drown the log during an enrollment burst; latency is in /metrics.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    // Only the proxies named in `trustProxy` may say who the client is (X-Forwarded-For, used by
    // the audit log and login throttling) and whether it came over HTTPS (X-Forwarded-Proto,
    // which decides the cookie's Secure flag). Anyone else's headers are ignored.
    trustProxy: opts.trustProxy ? opts.trustProxy.split(',').map((s) => s.trim()).filter(Boolean) : false,
    // Errors Fastify raises before routing (a malformed %-escape, a path parameter longer than
    // its router allows) get the API's error shape too; Fastify's own body has other keys and
    // echoes the path. Found by the REST fuzzer.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      // Before routing there is no route schema: the reply is a plain one.
      void (reply as unknown as FastifyReply).status(tooLong ? 414 : 400).send({
        error: { code: 'invalid_request', message: tooLong ? 'a path parameter is too long' : 'the URL is not valid (a malformed %-escape)' },
      });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  const routes: RouteInfo[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      routes.push({ method, url: route.url });
    }
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // On the root, before any route: every route's body is watched.
  app.addHook('preParsing', watchSlowBodies(opts.slowBody));
  app.addHook('preParsing', continueBeforeBody);
  // The API speaks JSON only; anything else is a 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler(opts.logger, opts.maxBodyBytes));
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Pallas API', version: PALLAS_VERSION, description: 'Manage fleets of virtualized edge devices.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A session token from POST /auth/login, or an API token (pat_…)' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'pallas_session', description: 'The console\'s session; state-changing calls also need the x-csrf-token header' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  });

  registerAuditHook(app as unknown as App, ctx.audit, API_PREFIX);

  await app.register(healthRoutes, { ...ctx, metricsToken: opts.metricsToken });
  await app.register(deviceDownloadRoutes, ctx);
  await app.register(async (api) => {
    api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    await api.register(authRoutes, ctx);
    await api.register(userRoutes, ctx);
    await api.register(apiTokenRoutes, ctx);
    await api.register(auditRoutes, ctx);
    await api.register(deviceRoutes, ctx);
    await api.register(enrollmentRoutes, ctx);
    await api.register(vmRoutes, ctx);
    await api.register(deviceUpdateRoutes, ctx);
    await api.register(taskRoutes, ctx);
    await api.register(eventRoutes, ctx);
    await api.register(fleetRoutes, ctx);
    await api.register(clusterRoutes, ctx);
    await api.register(historyRoutes, ctx);
    await api.register(artifactRoutes, ctx);
    await api.register(groupRoutes, ctx);
    await api.register(rolloutRoutes, ctx);
  }, { prefix: API_PREFIX });
  await app.register(consoleRoutes);

  return app as unknown as App;
}

