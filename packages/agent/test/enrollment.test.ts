import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { EnrollRequest } from '@pallas/protocol';
import { pino } from 'pino';
import { enroll, enrollUrl, requestEnrollment } from '../src/enrollment/enroll.js';
import { isAgentError } from '../src/errors.js';

const logger = pino({ level: 'silent' });
const deviceId = '3f0e1c1e-8d4a-4c53-9a57-1d2b3c4d5e6f';
const request: EnrollRequest = {
  token: 'pet_0123456789abcdef',
  deviceId,
  facts: {
    hostname: 'sim-0001',
    hypervisor: { kind: 'sim', version: '1.0' },
    cpu: { model: 'x', cores: 4 },
    memory: { totalMB: 1024 },
    datastores: [],
    networks: [],
    agentVersion: '0.1.0',
    uptimeSec: 1,
    agentUptimeSec: 0,
  },
};
const good = {
  deviceId,
  mqtt: { url: 'mqtt://127.0.0.1:1883', clientId: deviceId, username: deviceId, password: 'pw', keepaliveSec: 30 },
  statusIntervalSec: 60,
};

// Each test queues the answers the server gives, in order.
let answers: Array<{ status: number; body: unknown } | 'hang-up'> = [];
const seen: Array<{ url: string | undefined; body: unknown }> = [];
let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ url: req.url, body: JSON.parse(body) });
      const a = answers.shift() ?? { status: 500, body: {} };
      if (a === 'hang-up') return req.socket.destroy();
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const fast = { baseMs: 5, capMs: 20 };

describe('enrollment', () => {
  it('builds the URL, keeping a path prefix', () => {
    assert.equal(enrollUrl('https://m.example'), 'https://m.example/api/v1/enroll');
    assert.equal(enrollUrl('https://m.example/pallas/'), 'https://m.example/pallas/api/v1/enroll');
  });

  it('posts the request and returns a validated response', async () => {
    answers = [{ status: 200, body: good }];
    seen.length = 0;
    assert.deepEqual(await enroll({ manager: base, request, logger }), good);
    assert.equal(seen[0]?.url, '/api/v1/enroll');
    assert.deepEqual(seen[0]?.body, request);
  });

  it('retries network errors, 5xx, 429 and malformed 2xx with backoff, then succeeds', async () => {
    answers = ['hang-up', { status: 503, body: { error: { code: 'unavailable', message: 'later' } } }, { status: 429, body: {} }, { status: 200, body: '<html>portal</html>' }, { status: 200, body: good }];
    const delays: number[] = [];
    const res = await enroll({ manager: base, request, logger, backoff: fast, onRetry: (_e, _n, d) => delays.push(d) });
    assert.deepEqual(res, good);
    assert.equal(delays.length, 4);
    assert.ok(delays.every((d) => d >= 0 && d <= 20));
  });

  it('retries when the manager is not listening at all', async () => {
    const res = enroll({ manager: 'http://127.0.0.1:1', request, logger, backoff: fast, signal: AbortSignal.timeout(200) });
    await assert.rejects(res, (err: Error) => err.name === 'TimeoutError');
  });

  it('treats a 4xx as final, carrying the server error', async () => {
    answers = [{ status: 403, body: { error: { code: 'enrollment_token_invalid', message: 'enrollment token has expired' } } }];
    seen.length = 0;
    await assert.rejects(enroll({ manager: base, request, logger, backoff: fast }), (err) => {
      assert.ok(isAgentError(err, 'enrollment_rejected'));
      assert.deepEqual(err.serverError, { code: 'enrollment_token_invalid', message: 'enrollment token has expired' });
      assert.match(err.message, /403 enrollment_token_invalid: enrollment token has expired/);
      return true;
    });
    assert.equal(seen.length, 1, 'no retry after a 4xx');
  });

  it('refuses a response for another device', async () => {
    answers = [{ status: 200, body: { ...good, deviceId: '00000000-0000-4000-8000-000000000000' } }];
    await assert.rejects(requestEnrollment(base, request), (err: { retriable?: boolean }) => err.retriable === false);
  });

  it('passes each attempt through the gate', async () => {
    answers = [{ status: 500, body: {} }, { status: 200, body: good }];
    let gated = 0;
    await enroll({ manager: base, request, logger, backoff: fast, gate: (fn) => (gated++, fn()) });
    assert.equal(gated, 2);
  });
});
