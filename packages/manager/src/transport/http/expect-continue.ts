import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): the client waits for `100 Continue` before it
 * sends the body. Node answers it at once, before any route has looked at the request, unless
 * the server listens for `checkContinue`. Here the request goes on unanswered instead:
 *
 * - every route but an upload answers it as its body is about to be read (`continueBeforeBody`);
 * - an upload answers it only once the upload is accepted (role, metadata, declared size), so a
 *   refused upload is refused before any of its bytes are on the wire. Before, the bytes were
 *   already coming when the manager answered and closed the connection on them; the client's
 *   kernel could then meet a reset and drop the answer, and the client saw EPIPE instead of
 *   `413 payload_too_large` (about 1 upload in 8 here).
 */
export function holdContinue(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
}

const continued = new WeakSet<ServerResponse>();

/** Sends `100 Continue` if the client asked for it and has not had it. */
export function sendContinue(request: FastifyRequest, reply: FastifyReply): void {
  const res = reply.raw;
  if (continued.has(res) || res.headersSent || !/100-continue/i.test(request.headers.expect ?? '')) return;
  continued.add(res);
  res.writeContinue();
}

/** Whether the client may be sending the body now: it did not wait for `100 Continue`, or has had it. */
export function bodyMayBeComing(request: FastifyRequest, reply: FastifyReply): boolean {
  return continued.has(reply.raw) || !/100-continue/i.test(request.headers.expect ?? '');
}

/** A preParsing hook: the body of any route but an upload is asked for as it is about to be read. */
export async function continueBeforeBody(request: FastifyRequest, reply: FastifyReply, payload: Readable): Promise<Readable> {
  if (request.routeOptions.config?.uploadBody !== true) sendContinue(request, reply);
  return payload;
}
