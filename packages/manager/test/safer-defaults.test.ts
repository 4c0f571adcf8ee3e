/**
 * Issue #15 points 9, 11–14 and 15 (slow clients): what a manager started with its defaults
 * shows and exposes. Real manager processes, real sockets.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, BIN, patchFile, startManagerProcess, startNode, tempDir, waitFor, type ManagerProcess } from '@pallas/testkit';
import { expectError } from './support.js';

/** Resolves true when a TCP connection to host:port is accepted, false when refused. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function outwardAddress(): string | undefined {
  return Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

function httpsGet(manager: ManagerProcess, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${manager.httpsUrl}${path}`, { ca: readFileSync(manager.caFile) }, (res) => {
      res.resume();
      resolve({ status: res.statusCode!, headers: res.headers });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether a TLS 1.2 handshake offering only `ciphers` succeeds. */
function handshake(port: number, ciphers: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca, maxVersion: 'TLSv1.2', ciphers }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

describe('the admin password is never echoed; a generated one is shown once (point 9)', () => {
  it('does not print a password given in PALLAS_ADMIN_PASSWORD', async () => {
    const m = await startManagerProcess();
    try {
      assert.ok(!m.output().includes(ADMIN_PASSWORD), `the banner echoed the given password:\n${m.output()}`);
    } finally {
      await m.close();
    }
  });

  it('prints a generated password at the first start only', async () => {
    const dir = tempDir('pallas-generated-');
    // SQLite: its file outlives the first process (a PostgreSQL database it made would be dropped by close).
    const first = await startManagerProcess({ dataDir: dir.path, env: { PALLAS_ADMIN_PASSWORD: undefined }, database: 'sqlite' });
    const generated = /admin \/ (\S+)\s+\(generated/.exec(first.output())?.[1];
    assert.ok(generated, `no generated password in:\n${first.output()}`);
    await first.close();
    const second = await startManagerProcess({ dataDir: dir.path, env: { PALLAS_ADMIN_PASSWORD: undefined }, database: { url: first.databaseUrl } });
    try {
      assert.ok(!second.output().includes(generated), 'the generated password was printed again');
      assert.ok(await second.api.login('admin', generated), 'the generated password works');
    } finally {
      await second.close();
      dir.cleanup();
    }
  });
});

describe('plain listeners on loopback unless an address is given (point 11)', () => {
  const dir = tempDir('pallas-loopback-');
  let proc: ReturnType<typeof startNode>;
  let ports: { http: number; https: number; mqtt: number; mqtts: number };
  before(async () => {
    proc = startNode(BIN.manager, ['--data-dir', dir.path, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0'], { PALLAS_ADMIN_PASSWORD: ADMIN_PASSWORD, PALLAS_LOG_LEVEL: 'warn' });
    ports = await waitFor('manager to start', () => proc.output().includes('is running') && JSON.parse(readFileSync(join(dir.path, 'ports.json'), 'utf8')), { timeoutMs: 60_000 });
  });
  after(async () => {
    await proc?.stop();
    dir.cleanup();
  });

  it('serves TLS on every interface, plain HTTP and MQTT on 127.0.0.1 only, and says so', async () => {
    const outward = outwardAddress();
    assert.ok(outward, 'this test needs a non-loopback IPv4 address');
    assert.equal(await reachable(outward, ports.https), true, 'HTTPS on the outward address');
    assert.equal(await reachable(outward, ports.mqtts), true, 'MQTTS on the outward address');
    assert.equal(await reachable(outward, ports.http), false, 'plain HTTP must not be reachable from outside');
    assert.equal(await reachable(outward, ports.mqtt), false, 'plain MQTT must not be reachable from outside');
    assert.equal(await reachable('127.0.0.1', ports.http), true);
    assert.equal(await reachable('127.0.0.1', ports.mqtt), true);
    assert.match(proc.output(), /Plain: +HTTP on 127\.0\.0\.1 only, MQTT on 127\.0\.0\.1 only/);
  });
});

describe('files holding secrets or hashes are 0600 whatever the folder (point 12)', () => {
  it('creates the database, its WAL files and the keys 0600 in an existing world-readable data dir', async () => {
    const dir = tempDir('pallas-modes-');
    mkdirSync(dir.path, { recursive: true, mode: 0o755 });
    const m = await startManagerProcess({ dataDir: dir.path, database: 'sqlite' });
    try {
      await m.admin(); // a write, so the WAL exists
      for (const file of ['pallas.db', 'pallas.db-wal', 'pallas.db-shm', 'tls/ca.key', 'tls/server.key', 'signing-key.pem', 'download-url.key']) {
        const mode = statSync(join(dir.path, file)).mode & 0o777;
        assert.equal(mode & 0o077, 0, `${file} is ${mode.toString(8)}`);
      }
    } finally {
      await m.close();
      dir.cleanup();
    }
  });
});

describe('headers, error shape, TLS suites, /metrics token, slow clients (points 13, 14, 15)', () => {
  let m: ManagerProcess;
  const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';
  before(async () => { m = await startManagerProcess({ args: ['--metrics-token', METRICS_TOKEN] }); });
  after(async () => m?.close());

  it('sends HSTS over HTTPS and nosniff on every response, errors raised before routing included', async () => {
    const secure = await httpsGet(m, '/healthz');
    assert.equal(secure.status, 200);
    assert.match(String(secure.headers['strict-transport-security']), /max-age=\d+/);
    assert.equal(secure.headers['x-content-type-options'], 'nosniff');
    const plain = await m.api.get('/healthz');
    assert.equal(plain.headers.get('x-content-type-options'), 'nosniff');
    const malformed = await m.api.get('/api/v1/devices/%E0%A4%A');
    expectError(malformed, 400, 'invalid_request');
    assert.equal(malformed.headers.get('x-content-type-options'), 'nosniff');
    expectError(await m.api.get('/no/such/page/api'), 404, 'not_found');
  });

  it('offers only AEAD suites with TLS 1.2, on HTTPS and MQTTS', async () => {
    const ca = readFileSync(m.caFile);
    const cbc = 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA:AES128-GCM-SHA256';
    for (const port of [Number(new URL(m.httpsUrl).port), m.mqttsPort]) {
      assert.equal(await handshake(port, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256', ca), true, `AEAD on ${port}`);
      assert.equal(await handshake(port, cbc, ca), false, `a CBC or non-forward-secret suite was accepted on ${port}`);
    }
  });

  it('needs the bearer token for /metrics when one is set', async () => {
    expectError(await m.api.get('/metrics'), 401, 'unauthorized', 'metrics');
    const ok = await m.api.request('GET', '/metrics', undefined, { authorization: `Bearer ${METRICS_TOKEN}` });
    assert.equal(ok.status, 200);
    assert.match(String(ok.body), /pallas_/);
  });

  it('cuts a client that trickles its headers (10 s) or stalls its body (408 after 30 s, the default bodyTimeoutSec)', async () => {
    const port = Number(new URL(m.httpUrl).port);
    const trickle = closedAfter(port, (s) => {
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      const timer = setInterval(() => { if (!s.destroyed) s.write('X-Slow: 1\r\n'); else clearInterval(timer); }, 1000);
      s.once('close', () => clearInterval(timer));
    }, 20_000);
    const stall = closedAfter(port, (s) => {
      s.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user');
    }, 45_000);
    const [trickled, stalled] = await Promise.all([trickle, stall]);
    assert.ok(trickled.ms < 13_000, `headers trickled for ${trickled.ms} ms`);
    assert.ok(stalled.ms >= 29_000 && stalled.ms < 35_000, `a stalled body was cut after ${stalled.ms} ms`);
    expectTimeoutAnswer(stalled.received);
  });
});

/** Opens a raw connection, runs `start` on it, and resolves when the server closes it: after how long, and what it sent. */
function closedAfter(port: number, start: (s: Socket) => void, limitMs: number): Promise<{ ms: number; received: string }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let received = '';
    const s = tcpConnect(port, '127.0.0.1', () => start(s));
    const guard = setTimeout(() => { s.destroy(); reject(new Error(`still open after ${limitMs} ms`)); }, limitMs);
    s.on('data', (b) => { received += b.toString(); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(guard); resolve({ ms: Date.now() - t0, received }); });
  });
}

/** A 408 in the API's error shape, with the connection closed after it. */
function expectTimeoutAnswer(received: string): void {
  assert.match(received, /^HTTP\/1\.1 408 /, received.slice(0, 300));
  assert.match(received, /\r\nconnection: close\r\n/i, received.slice(0, 300));
  const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'request_timeout');
  assert.deepEqual(Object.keys(body), ['error']);
}

/** Writes `chunks` one every `everyMs`, then stops (the connection stays open). */
function dribble(s: Socket, chunks: Array<string | Buffer>, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (s.destroyed || i >= chunks.length) return void clearInterval(timer);
    s.write(chunks[i++]!);
  }, everyMs);
  s.once('close', () => clearInterval(timer));
}

describe('a request body that trickles in is cut; a steady upload is not (point 15)', () => {
  let m: ManagerProcess;
  let port: number;
  let token: string;
  // Short bounds, so the test does not take the defaults' 30 s.
  before(async () => {
    m = await startManagerProcess({ args: ['--body-timeout-sec', '2', '--upload-window-sec', '2', '--upload-min-bytes', '65536'] });
    port = Number(new URL(m.httpUrl).port);
    token = (await m.admin()).token!;
  });
  after(async () => m?.close());

  const uploadHead = (name: string, length: number) => `POST /api/v1/artifacts?kind=patch&name=${name}&version=1 HTTP/1.1\r\nHost: x\r\n`
    + `Authorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;

  it('answers 408 to a JSON body that is not complete within bodyTimeoutSec, though bytes keep coming', async () => {
    const body = JSON.stringify({ username: 'admin', password: 'not-the-password' });
    const res = await closedAfter(port, (s) => {
      s.write(`POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      dribble(s, [...body], 300); // one byte every 300 ms: never 60 s of silence
    }, 15_000);
    assert.ok(res.ms >= 1_900 && res.ms < 5_000, `cut after ${res.ms} ms`);
    expectTimeoutAnswer(res.received);
  });

  it('takes a JSON body that comes slowly but within the bound, and keeps the connection', async () => {
    const body = JSON.stringify({ username: 'admin', password: 'not-the-password' });
    const t0 = Date.now();
    let received = '';
    const s = tcpConnect(port, '127.0.0.1', () => {
      s.write(`POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      dribble(s, [body.slice(0, 10), body.slice(10, 20), body.slice(20)], 400);
    });
    s.on('data', (b) => { received += b.toString(); });
    s.on('error', () => {});
    try {
      await waitFor('the answer', () => /"invalid_credentials"/.test(received), { timeoutMs: 10_000 });
      assert.match(received, /^HTTP\/1\.1 401 /, received.slice(0, 300));
      // Past the 2 s bound the keep-alive connection is still open: the watch ended with the body.
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 3000 - Date.now())));
      assert.equal(s.destroyed, false, 'the connection was closed after a complete body');
    } finally {
      s.destroy();
    }
  });

  it('answers 408 to an upload bringing fewer than uploadMinBytes in a window', async () => {
    const file = patchFile('1', randomBytes(512 * 1024));
    const res = await closedAfter(port, (s) => {
      s.write(uploadHead('trickled', file.length));
      const chunks = Array.from({ length: 100 }, (_, i) => file.subarray(i * 1024, (i + 1) * 1024));
      dribble(s, chunks, 250); // 4 KiB/s: 8 KiB per 2 s window, under 64 KiB
    }, 15_000);
    assert.ok(res.ms >= 1_900 && res.ms < 6_000, `cut after ${res.ms} ms`);
    expectTimeoutAnswer(res.received);
    assert.equal((await (await m.admin()).get<{ total: number }>('/api/v1/artifacts?name=trickled')).body.total, 0, 'nothing kept');
  });

  it('lets a steady upload above the minimum take several windows', async () => {
    const file = patchFile('1', randomBytes(1536 * 1024));
    const chunk = 64 * 1024;
    const t0 = Date.now();
    const res = await closedAfter(port, (s) => {
      s.write(uploadHead('steady', file.length).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
      const chunks = Array.from({ length: Math.ceil(file.length / chunk) }, (_, i) => file.subarray(i * chunk, (i + 1) * chunk));
      dribble(s, chunks, 250); // 256 KiB/s: 512 KiB per window
    }, 30_000);
    assert.match(res.received, /^HTTP\/1\.1 201 /, res.received.slice(0, 400));
    assert.ok(Date.now() - t0 > 4_000, 'the upload spanned more than two windows');
  });
});
