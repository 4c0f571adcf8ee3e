import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ROUTES, schemaOf, type RouteBody, type RouteName, type RouteParams, type RouteQuery, type RouteResult, type RouteSpec,
} from '@pallas/protocol';
import type { App, RouteContext } from './context.js';

/** The request a route's handler gets: params, query and body typed from the route table. */
export type RouteRequest<R extends RouteName> = FastifyRequest<{
  Params: RouteParams<R>;
  Querystring: RouteQuery<R>;
  Body: RouteBody<R>;
}>;

/**
 * A route's handler: resolves to the answer, which goes out with the table's status (nothing
 * for 204). A handler that answers by itself (a file, an event stream) returns the reply.
 */
export type RouteHandler<R extends RouteName> = (req: RouteRequest<R>, reply: FastifyReply) => Promise<RouteResult<R> | FastifyReply | void>;

/**
 * Routes the manager serves outside the route table, all public: probes, metrics, the OpenAPI
 * document, the devices' signed download URLs and the web console. The route table test checks
 * that every route registered is either in the table or here.
 */
export const INFRA_ROUTES = ['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /api/v1/openapi.json', 'GET /dl/:artifactId', 'GET /*'] as const;

/**
 * Registers route `name` of the table on `app` (a plugin under /api/v1) with `handler`: the
 * method and path, the schemas that validate it and document it in OpenAPI, the role guard
 * (before the body is read: a caller without the role learns 401/403, never what is wrong with
 * its input), the audit action and the status of success all come from the table.
 */
export function serve<R extends RouteName>(app: App, ctx: RouteContext, name: R, handler: RouteHandler<R>): void {
  const spec: RouteSpec = ROUTES[name];
  const json = (n: RouteSpec['body'] | RouteSpec['response']) => (n === undefined || n === 'binary' || n === 'event-stream' ? undefined : schemaOf(n));
  const response = json(spec.response);
  app.route({
    // A file download answers HEAD too (size and ETag without the bytes).
    method: spec.response === 'binary' ? ['GET', 'HEAD'] : spec.method,
    url: spec.path,
    schema: {
      operationId: name,
      tags: [spec.tag],
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(spec.params ? { params: schemaOf(spec.params) } : {}),
      ...(spec.query ? { querystring: schemaOf(spec.query) } : {}),
      ...(json(spec.body) ? { body: json(spec.body) } : {}),
      ...(response ? { response: { [spec.status]: response } } : {}),
    },
    ...(spec.role === 'public' ? {} : { onRequest: ctx.guard(spec.role) }),
    // uploadBody: the raw bytes of an upload get the slow-body rule of uploads (slow-body.ts).
    config: { ...(spec.audit ? { auditAction: spec.audit } : {}), ...(spec.body === 'binary' ? { uploadBody: true } : {}) },
    handler: async (req, reply) => {
      void reply.status(spec.status);
      const out = await handler(req as RouteRequest<R>, reply);
      if ((out as unknown) === reply || reply.sent) return reply;
      return spec.status === 204 ? reply.send() : out;
    },
  });
}
