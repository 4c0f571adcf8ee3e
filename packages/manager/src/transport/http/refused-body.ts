import type { FastifyReply, FastifyRequest } from 'fastify';
import { bodyMayBeComing } from './expect-continue.js';

/** At most this much of a refused body is read and dropped before the connection is closed. */
const DRAIN_BYTES = 64 * 1024 * 1024;
/** And at most this long after the answer is written. */
const DRAIN_MS = 2_000;

/**
 * Closes the connection of a request whose body is refused unread (an upload over the limit, or
 * one that turned out not to be what it said), without losing the answer on the way.
 *
 * A client that waited for `100 Continue` and was not asked sent no byte: the connection closes
 * after the answer. A client that sends the body anyway is another matter, above all nginx in
 * front of the managers, which answers `Expect` itself and streams the body on
 * (deploy/nginx/pallas.conf): closing on unread bytes makes the kernel reset the connection, and
 * a peer still writing can meet the reset before it reads the answer. nginx then answered the
 * operator `502 Bad Gateway` instead of `413 payload_too_large`. So the rest of the body is read
 * and dropped until it ends (the connection then stays open, as for any request), or for
 * DRAIN_MS after the answer, or up to DRAIN_BYTES, and only then is the connection closed.
 */
export function closeAfterRefusal(request: FastifyRequest, reply: FastifyReply): void {
  if (!bodyMayBeComing(request, reply)) {
    void reply.header('connection', 'close');
    return;
  }
  const body = request.raw;
  if (body.readableEnded) return;
  let dropped = 0;
  let answered = false;
  const close = () => body.socket?.destroy();
  body.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (answered && dropped > DRAIN_BYTES) close();
  });
  body.resume();
  reply.raw.once('finish', () => {
    answered = true;
    if (body.readableEnded) return;
    if (dropped > DRAIN_BYTES) return close();
    const timer = setTimeout(close, DRAIN_MS);
    timer.unref();
    body.once('end', () => clearTimeout(timer));
    body.once('close', () => clearTimeout(timer));
  });
}
