/**
 * The client's transport where a real manager cannot be made to misbehave on cue: a bare HTTP
 * server that speaks the wire format badly or oddly (split line endings, opaque ids, dropped
 * connections, oversized events, silence, error pages, no answer at all).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { PallasApiError, PallasClient, PallasNetworkError, type LiveMessage } from '@pallas/client';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let url: string;
let handler: Handler = (_req, res) => res.writeHead(404).end();
const sockets = new Set<import('node:net').Socket>();

before(async () => {
  server = createServer((req, res) => handler(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  for (const s of sockets) s.destroy();
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const sse = (res: ServerResponse): void => void res.writeHead(200, { 'content-type': 'text/event-stream' });
const task = (id: string, state = 'running') => ({ type: 'task', task: { id, state } });
const fast = { retryMs: 10, maxRetryMs: 50 };

async function take(stream: AsyncIterable<LiveMessage>, n: number): Promise<LiveMessage[]> {
  const out: LiveMessage[] = [];
  for await (const m of stream) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

describe('client: live event stream', () => {
  it('parses events split anywhere (CRLF and UTF-8 characters across chunks), and skips comments and unknown types', async () => {
    const text = `retry: 10\r\n: connected\r\n\r\nid: k3f9a2-1\r\nevent: task\r\ndata: ${JSON.stringify(task('t1'))}\r\n\r\n`
      + 'event: hologram\ndata: {}\n\n'
      + `id: k3f9a2-2\nevent: task\ndata: ${JSON.stringify(task('t2', 'succeeded'), null, 2).replaceAll('\n', '\ndata: ')}\n\n`;
    const bytes = Buffer.from(text.replace('"t1"', '"t1-é"'));
    handler = (_req, res) => {
      sse(res);
      // One byte per write: every line ending is split from its neighbours, and the two bytes of é from each other.
      let i = 0;
      const next = (): void => {
        if (i < bytes.length) res.write(bytes.subarray(i, ++i), () => setImmediate(next));
      };
      next();
    };
    const stream = new PallasClient({ server: url, token: 't' }).events({}, fast);
    const got = await take(stream, 2);
    assert.deepEqual(got.map((m) => m.type === 'task' && [m.task.id, m.task.state]), [['t1-é', 'running'], ['t2', 'succeeded']]);
    assert.equal(stream.lastEventId, 'k3f9a2-2');
    stream.close();
  });

  it('resumes after a drop by sending the last id back verbatim, and surfaces reset', async () => {
    const asked: Array<string | undefined> = [];
    handler = (req, res) => {
      asked.push(req.headers['last-event-id'] as string | undefined);
      sse(res);
      if (asked.length === 1) res.end(`retry: 10\nid: k3f9a2-1042\nevent: task\ndata: ${JSON.stringify(task('a'))}\n\n`);
      else res.write('event: reset\ndata: {"type":"reset"}\n\n');
    };
    const stream = new PallasClient({ server: url, token: 't' }).events({ taskId: 'a' }, fast);
    const got = await take(stream, 2);
    assert.deepEqual(got.map((m) => m.type), ['task', 'reset']);
    assert.deepEqual(asked, [undefined, 'k3f9a2-1042']);
    stream.close();
  });

  it('says reset when it reconnects with no id to resume from', async () => {
    let n = 0;
    handler = (_req, res) => {
      sse(res);
      if (++n === 1) res.end(': nothing yet\n\n');
      else res.write(`id: x-1\nevent: task\ndata: ${JSON.stringify(task('b'))}\n\n`);
    };
    const stream = new PallasClient({ server: url, token: 't' }).events({}, fast);
    assert.deepEqual((await take(stream, 2)).map((m) => m.type), ['reset', 'task']);
    stream.close();
  });

  it('drops an event larger than its buffer and resumes after the last good id', async () => {
    const asked: Array<string | undefined> = [];
    handler = (req, res) => {
      asked.push(req.headers['last-event-id'] as string | undefined);
      sse(res);
      if (asked.length === 1) {
        res.write(`id: ok-1\nevent: task\ndata: ${JSON.stringify(task('c'))}\n\n`);
        res.write(`event: task\ndata: ${'x'.repeat(200_000)}`);
      } else {
        res.write(`id: ok-2\nevent: task\ndata: ${JSON.stringify(task('d'))}\n\n`);
      }
    };
    const stream = new PallasClient({ server: url, token: 't' }).events({}, { ...fast, maxEventChars: 64 * 1024 });
    const got = await take(stream, 2);
    assert.deepEqual(got.map((m) => m.type === 'task' && m.task.id), ['c', 'd']);
    assert.deepEqual(asked, [undefined, 'ok-1']);
    stream.close();
  });

  it('takes a silent connection as dead and reconnects', async () => {
    let n = 0;
    handler = (_req, res) => {
      sse(res);
      if (++n === 1) res.write(`id: s-1\nevent: task\ndata: ${JSON.stringify(task('e'))}\n\n`); // then silence
      else res.write(`id: s-2\nevent: task\ndata: ${JSON.stringify(task('f'))}\n\n`);
    };
    const stream = new PallasClient({ server: url, token: 't' }).events({}, { ...fast, idleTimeoutMs: 200 });
    assert.deepEqual((await take(stream, 2)).map((m) => m.type === 'task' && m.task.id), ['e', 'f']);
    stream.close();
  });

  it('rejects `opened` on a 4xx at once, and gives up on a server that keeps closing at once', async () => {
    handler = (_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"unauthorized","message":"log in"}}');
    const refused = new PallasClient({ server: url, token: 't' }).events({}, fast);
    await assert.rejects(refused.opened, (e: unknown) => e instanceof PallasApiError && e.code === 'unauthorized');
    await assert.rejects(take(refused, 1), PallasApiError);

    let connections = 0;
    handler = (_req, res) => {
      sse(res);
      res.end(++connections === 1 ? `id: once-1\nevent: task\ndata: ${JSON.stringify(task('g'))}\n\n` : ': bye\n\n');
    };
    const states: string[] = [];
    // A connection that lasts maxRetryMs counts as a good one and starts the count afresh: keep that
    // far above what a loaded machine takes to open and close one (the back-off stays short).
    const flaky = new PallasClient({ server: url, token: 't' }).events({}, { ...fast, maxRetryMs: 10_000, maxReconnects: 3, onState: (s) => states.push(s) });
    await flaky.opened;
    await assert.rejects(take(flaky, 2), /keeps closing/);
    assert.equal(connections, 5, 'the first, then three failed reconnections and the one that gives up');
    assert.deepEqual([...new Set(states)], ['connecting', 'live', 'reconnecting']);
  });

  it('ends iteration quietly when closed or when its signal aborts', async () => {
    handler = (_req, res) => {
      sse(res);
      res.write(': open\n\n');
    };
    const stop = new AbortController();
    const stream = new PallasClient({ server: url, token: 't' }).events({}, { ...fast, signal: stop.signal });
    await stream.opened;
    setTimeout(() => stop.abort(), 50);
    assert.deepEqual(await take(stream, 1), []);
  });
});

describe('client: transport errors', () => {
  it("reads a proxy's error page as http_error with the status", async () => {
    handler = (_req, res) => res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' }).end('<html>nginx</html>');
    await assert.rejects(new PallasClient({ server: url }).call('me'), (e: unknown) =>
      e instanceof PallasApiError && e.code === 'http_error' && e.status === 502 && /502 Bad Gateway/.test(e.message));
  });

  it('names the server and the reason when it cannot be reached, or does not answer in time', async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    await assert.rejects(new PallasClient({ server: deadUrl }).call('me'), (e: unknown) =>
      e instanceof PallasNetworkError && e.message.includes(deadUrl) && /ECONNREFUSED/.test(e.message));

    handler = () => {}; // never answers
    await assert.rejects(new PallasClient({ server: url, timeoutMs: 100 }).call('me'), (e: unknown) => e instanceof PallasNetworkError && /timed out/.test(e.message));
  });

  it('the timeout bounds the wait for the answer only, not how long a stream stays open', async () => {
    handler = (_req, res) => {
      sse(res);
      res.write(': open\n\n');
      setTimeout(() => res.write(`id: late-1\nevent: task\ndata: ${JSON.stringify(task('late'))}\n\n`), 300);
    };
    const stream = new PallasClient({ server: url, token: 't', timeoutMs: 100 }).events({}, fast);
    assert.deepEqual((await take(stream, 1)).map((m) => m.type === 'task' && m.task.id), ['late']);
    stream.close();
  });
});
