import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Service } from '../../lifecycle.js';
import { holdContinue } from './expect-continue.js';

/** A plain HTTP listener for a request handler (the HTTPS server's, behind a TLS-terminating proxy). */
export class PlainHttpServer implements Service {
  readonly name = 'plain http';
  readonly #server: Server;
  readonly #port: number;
  readonly #host: string;

  /** `timeouts`: what bounds a slow client (SLOW_CLIENT_TIMEOUTS, the same as the HTTPS server's). */
  constructor(handler: RequestListener, port: number, host: string, timeouts: ServerOptions & { idleMs: number }) {
    const { idleMs, ...options } = timeouts;
    this.#server = createServer(options, handler);
    this.#server.setTimeout(idleMs);
    holdContinue(this.#server);
    this.#port = port;
    this.#host = host;
  }

  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#host, () => resolve());
    });
  }

  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
