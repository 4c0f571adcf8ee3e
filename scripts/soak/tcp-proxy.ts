/**
 * A small TCP proxy between the devices and the MQTT broker, for the soak: it adds a delay to
 * every chunk in both directions (this kernel has no netem), and it can go down and come back
 * on the same port (an outage of the devices' link only: the managers reach the broker
 * directly). Bytes keep their order: each direction is one queue with its own timer.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  readonly port: number;
  readonly url: string;
  /** Added one-way delay in ms for chunks read from now on. */
  setDelay(ms: number): void;
  /** Where new connections go (the broker's port may be known only after the proxy starts). */
  setTarget(port: number): void;
  /** Closes the listener and cuts every connection (an outage). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  readonly isUp: boolean;
  close(): Promise<void>;
}

/** Forwards `from` to `to`, each chunk held `delay()` ms, in order. */
function pipeDelayed(from: Socket, to: Socket, delay: () => number): void {
  const queue: Array<{ due: number; chunk: Buffer }> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.due <= now) to.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
  };
  from.on('data', (chunk: Buffer) => {
    const ms = delay();
    if (ms <= 0 && queue.length === 0) {
      to.write(chunk);
      return;
    }
    // Never before a chunk read earlier: the delay may have dropped since.
    const due = Math.max(Date.now() + ms, queue.at(-1)?.due ?? 0);
    queue.push({ due, chunk });
    timer ??= setTimeout(flush, due - Date.now());
  });
  from.on('close', () => {
    // What was read still arrives, late; then the other side is closed.
    const last = queue.at(-1)?.due ?? Date.now();
    setTimeout(() => to.end(), Math.max(0, last - Date.now()) + 1);
  });
}

export async function startDelayProxy(opts: { port?: number; target?: number } = {}): Promise<DelayProxy> {
  let delayMs = 0;
  let target = opts.target ?? 0;
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const onConnection = (client: Socket) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream, () => delayMs);
    pipeDelayed(upstream, client, () => delayMs);
  };
  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    const s = createServer(onConnection);
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      server = s;
      resolve((s.address() as { port: number }).port);
    });
  });
  const port = await listen(opts.port ?? 0);
  const down = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    setDelay: (ms) => { delayMs = ms; },
    setTarget: (p) => { target = p; },
    down,
    up: async () => { if (!server) await listen(port); },
    get isUp() { return server !== undefined; },
    close: down,
  };
}
