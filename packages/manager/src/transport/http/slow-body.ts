import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';

/** How slowly a request body may arrive (docs/security.md, "Slow clients"). */
export interface SlowBodyLimits {
  /** A body must be complete within this long after it starts (every route but uploads). */
  bodyTimeoutMs: number;
  /** Uploads (routes whose body is `binary`): at least this many bytes in each window; 0 = no minimum. */
  uploadMinBytes: number;
  uploadWindowMs: number;
}

/**
 * Issue #15 point 15: a body that trickles in is cut. Node's idle timeout (60 s) only sees
 * silence, so a client sending one byte every 59 s would hold a request (and whatever its
 * handler holds) for ever; Node's own `requestTimeout` would cut artifact uploads too, which
 * may take hours over a slow link. So each body is watched as it is read:
 *
 * - a JSON body must be complete within `bodyTimeoutMs`;
 * - an upload must bring at least `uploadMinBytes` in each `uploadWindowMs` (however long it
 *   takes in all).
 *
 * Either way the body stream fails with `408 request_timeout` (the API's error shape, through
 * the error handler) and `Connection: close`, so Node closes the socket after the answer
 * instead of reading on. If an answer was already sent, the socket is closed.
 */
export function watchSlowBodies(limits: SlowBodyLimits) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: Readable): Promise<Readable> => {
    const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
    if (!hasBody) return payload;
    const upload = request.routeOptions.config?.uploadBody === true;
    if (upload && limits.uploadMinBytes === 0) return payload;
    const watch = new BodyWatch(upload ? { minBytes: limits.uploadMinBytes, windowMs: limits.uploadWindowMs } : { deadlineMs: limits.bodyTimeoutMs }, (message) => {
      if (reply.sent || reply.raw.headersSent) {
        request.raw.socket?.destroy();
        watch.destroy();
      } else {
        watch.destroy(new AppError('request_timeout', message, { headers: { connection: 'close' } }));
      }
    });
    // An upload's stream is handed to the route unread; until the route pipes it somewhere
    // nobody listens for its error, which would otherwise crash the process. The route still
    // sees the error: the stream is destroyed with it.
    watch.on('error', () => {});
    // The answer went out without the body being read (a refused upload): nothing to watch,
    // and the rest of the body is read and dropped, as Node does for a body nobody reads.
    // Left piped into a watch nobody reads, it would stall the connection, and the client's
    // next request on it (keep-alive) would meet a reset.
    reply.raw.once('finish', () => {
      watch.stop();
      if (!payload.readableEnded) {
        payload.unpipe(watch);
        payload.resume();
      }
    });
    reply.raw.once('close', () => watch.stop());
    // A client that goes away mid-body fails the watched stream as it failed the raw one (a cut
    // upload is then discarded). Not `pipeline`: it would destroy the request on a cut, and with
    // it the socket the 408 is to be written on.
    finished(payload, (err) => { if (err) watch.destroy(err); });
    return payload.pipe(watch);
  };
}

type Rule = { deadlineMs: number } | { minBytes: number; windowMs: number };

/** Passes the body through unchanged, and calls `cut` when it comes too slowly. */
class BodyWatch extends Transform {
  readonly #timer: NodeJS.Timeout;
  #windowBytes = 0;

  constructor(rule: Rule, cut: (message: string) => void) {
    super();
    if ('deadlineMs' in rule) {
      this.#timer = setTimeout(() => cut(`the request body was not complete within ${seconds(rule.deadlineMs)} (bodyTimeoutSec)`), rule.deadlineMs);
    } else {
      this.#timer = setInterval(() => {
        if (this.#windowBytes < rule.minBytes) {
          cut(`the upload sent ${this.#windowBytes} bytes in ${seconds(rule.windowMs)}, fewer than the minimum of ${rule.minBytes} (uploadMinBytes per uploadWindowSec)`);
        }
        this.#windowBytes = 0;
      }, rule.windowMs);
    }
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#windowBytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.stop();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stop();
    callback(err);
  }
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
