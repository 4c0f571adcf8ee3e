import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { PallasClient } from '../src/client.js';
import { ApiRequestError, NetworkError } from '../src/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let handler: Handler = (_q, res) => res.end();
let url = '';
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += String(c)));
  req.on('end', () => handler(req, res, body));
});
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('sends the bearer token, JSON body and query; decodes JSON', async () => {
  let seen: { url?: string; auth?: string; type?: string; body?: string; method?: string } = {};
  handler = (req, res, body) => {
    seen = { url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body, method: req.method };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'd1', name: 'x' }));
  };
  const c = new PallasClient({ server: `${url}/`, token: 'tok' });
  const d = await c.updateDevice('a/b', { name: 'x' });
  assert.deepEqual(d, { id: 'd1', name: 'x' });
  assert.deepEqual(seen, { url: '/api/v1/devices/a%2Fb', auth: 'Bearer tok', type: 'application/json', body: '{"name":"x"}', method: 'PATCH' });

  await c.listDevices({ presence: 'online', name: 'lyon edge', limit: 10 });
  assert.equal(seen.url, '/api/v1/devices?presence=online&name=lyon+edge&limit=10');
});

test('204 resolves to undefined', async () => {
  handler = (_q, res) => res.writeHead(204).end();
  assert.equal(await new PallasClient({ server: url, token: 't' }).deleteDevice('d1'), undefined);
});

test('error bodies become ApiRequestError with status, code and message', async () => {
  handler = (_q, res) => res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":"forbidden","message":"admin role required"}}');
  await assert.rejects(new PallasClient({ server: url, token: 't' }).listUsers(), (e: unknown) => {
    assert.ok(e instanceof ApiRequestError);
    assert.equal(e.status, 403);
    assert.equal(e.code, 'forbidden');
    assert.equal(e.message, 'admin role required');
    return true;
  });
});

test('a non-JSON error (a proxy page) still gives a readable message', async () => {
  handler = (_q, res) => res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' }).end('<html>oops</html>');
  await assert.rejects(new PallasClient({ server: url }).me(), (e: unknown) => {
    assert.ok(e instanceof ApiRequestError);
    assert.equal(e.status, 502);
    assert.equal(e.message, 'the server answered HTTP 502 Bad Gateway');
    return true;
  });
});

test('a refused connection becomes NetworkError naming the server', async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));
  await assert.rejects(new PallasClient({ server: deadUrl }).me(), (e: unknown) => {
    assert.ok(e instanceof NetworkError);
    assert.equal(e.message, `could not reach the Pallas server at ${deadUrl} (ECONNREFUSED)`);
    return true;
  });
});

test('a server that never answers times out', async () => {
  handler = () => {}; // hold the request open
  await assert.rejects(new PallasClient({ server: url, timeoutMs: 100 }).me(), /timed out/);
});

test('all() pages through every item', async () => {
  const ids = Array.from({ length: 7 }, (_, i) => ({ id: `d${i}` }));
  const offsets: number[] = [];
  handler = (req, res) => {
    const u = new URL(req.url ?? '', 'http://x');
    const limit = Number(u.searchParams.get('limit'));
    const offset = Number(u.searchParams.get('offset'));
    offsets.push(offset);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: ids.slice(offset, offset + limit), total: ids.length, limit, offset }));
  };
  const c = new PallasClient({ server: url, token: 't' });
  const page = await c.all((q) => c.listDevices(q), 3);
  assert.deepEqual(page.items.map((d) => d.id), ids.map((d) => d.id));
  assert.equal(page.total, 7);
  assert.deepEqual(offsets, [0, 3, 6]);
});
