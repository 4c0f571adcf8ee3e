/**
 * The one HTTP client that drives both sides of a manager-vs-`GET /healthz` ratio.
 *
 * The benchmark process shares the machine's two cores with the manager, so whatever the
 * client spends per request is taken from the manager and lands in the figure. `fetch` (undici
 * with its streams and its Response objects) and @pallas/client on top of it cost the bench
 * process more per request than the manager's `/healthz` costs the manager, and not the same
 * amount for a GET and a POST: a ratio between two such figures measured the client as much
 * as the manager. Here both sides go through the same few lines of node:http on a keep-alive
 * Agent: the request is written in one piece (a POST body serialized once, by the caller), the
 * response is read to its end, and its status is checked. Nothing is cached or skipped for the
 * baseline that the measured side does not also get.
 */
import { Agent, request } from 'node:http';

export interface LightHttp {
  /** One request; resolves with the status and the whole body once it has been read. */
  send(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; body: string }>;
  close(): void;
}

export function lightHttp(baseUrl: string, concurrency: number): LightHttp {
  const url = new URL(baseUrl);
  // One socket per request in flight, kept open between requests: no connection set-up is
  // counted, for either side.
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  return {
    send: (method, path, body) => new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      const req = request({ host: url.hostname, port: url.port, method, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    }),
    close: () => agent.destroy(),
  };
}

/**
 * Sends `requests` requests made by `make` (at most `concurrency` in flight) and returns the
 * rate. Any status other than `expect` fails the run: a fast error is not a result.
 */
export async function requestRate(
  http: LightHttp, requests: number, concurrency: number,
  make: (i: number) => { method: 'GET' | 'POST'; path: string; body?: string }, expect = 200,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < requests) {
      const r = make(next++);
      const res = await http.send(r.method, r.path, r.body);
      if (res.status !== expect) throw new Error(`${r.method} ${r.path}: ${res.status} ${res.body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, worker));
  return requests / ((performance.now() - start) / 1000);
}
