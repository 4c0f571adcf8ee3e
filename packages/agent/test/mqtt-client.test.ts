/**
 * connectMqtt: mqtt.js's client on a socket of the agent's own, for mqtt:// and mqtts:// (the
 * rest of mqtt.js is not loaded). Against an Aedes broker over TCP and over TLS, with the
 * pinned CA and with another one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Aedes } from 'aedes';
import type { MqttClient } from 'mqtt';
import { skipUnless } from '@pallas/testkit';
import { connectMqtt } from '../src/link/mqtt-client.js';

const OPENSSL = '/usr/bin/openssl';
const dir = mkdtempSync(join(tmpdir(), 'pallas-mqtt-client-'));
let broker: Aedes;
let plain: Server;
let secure: Server;
let ca: string;
let otherCa: string;

/** A CA and a certificate for 127.0.0.1 it signed; and a second CA, for the refusal. */
function certificates(): { ca: string; otherCa: string; cert: string; key: string } {
  const f = (n: string) => join(dir, n);
  const openssl = (...args: string[]) => {
    const res = spawnSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (res.status !== 0) throw new Error(`openssl ${args[0]}: ${res.stderr}`);
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-days', '1', '-subj', '/CN=test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  openssl('req', '-x509', ...ecKey, '-days', '1', '-subj', '/CN=other CA', '-keyout', f('other.key'), '-out', f('other.crt'));
  openssl('req', ...ecKey, '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('server.ext'), '-out', f('server.crt'));
  const read = (n: string) => readFileSync(f(n), 'utf8');
  return { ca: read('ca.crt'), otherCa: read('other.crt'), cert: read('server.crt'), key: read('server.key') };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Connects, and says how it went: 'connected', or the first error's message. */
async function outcome(client: MqttClient): Promise<string> {
  try {
    return await new Promise<string>((resolve) => {
      client.once('connect', () => resolve('connected'));
      client.once('error', (err) => resolve(`error: ${err.message}`));
      client.once('close', () => resolve('closed'));
    });
  } finally {
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
}

const options = { clientId: 'dev-1', username: 'u', password: 'p', clean: false, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4 as const, writeCache: false };

describe('connectMqtt (mqtt.js client, the agent\'s own sockets)', { skip: skipUnless(existsSync(OPENSSL) ? undefined : `${OPENSSL} is missing (makes the TLS broker's certificate): apt-get install -y openssl`) }, () => {
  let plainPort = 0;
  let securePort = 0;
  before(async () => {
    const c = certificates();
    ca = c.ca;
    otherCa = c.otherCa;
    broker = await Aedes.createBroker();
    plain = createNetServer((socket) => broker.handle(socket));
    secure = createTlsServer({ cert: c.cert, key: c.key }, (socket) => broker.handle(socket)) as unknown as Server;
    plainPort = await listen(plain);
    securePort = await listen(secure);
  });
  after(async () => {
    plain?.close();
    secure?.close();
    await new Promise<void>((resolve) => (broker ? broker.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves every URL but mqtt:// and mqtts:// to mqtt.js', () => {
    for (const url of ['ws://127.0.0.1:1/mqtt', 'wss://127.0.0.1:1/mqtt', 'tcp://127.0.0.1:1']) assert.equal(connectMqtt(url, options), null, url);
  });

  it('connects over plain TCP, to the URL\'s host and port', async () => {
    const client = connectMqtt(`mqtt://127.0.0.1:${plainPort}`, options)!;
    assert.equal(client.options.port, plainPort);
    assert.equal(client.options.host, '127.0.0.1');
    assert.equal(await outcome(client), 'connected');
  });

  it('connects over TLS with the pinned CA, and refuses a broker the CA did not sign', async () => {
    assert.equal(await outcome(connectMqtt(`mqtts://127.0.0.1:${securePort}`, { ...options, rejectUnauthorized: true, ca })!), 'connected');
    const refused = await outcome(connectMqtt(`mqtts://127.0.0.1:${securePort}`, { ...options, rejectUnauthorized: true, ca: otherCa })!);
    assert.match(refused, /^error: .*(certificate|self.signed)/i);
  });

  it('takes an IPv6 literal and the default ports', () => {
    const client = connectMqtt('mqtts://[::1]', { ...options, reconnectPeriod: 0 })!;
    assert.equal(client.options.host, '::1');
    assert.equal(client.options.port, 8883);
    client.on('error', () => {});
    client.end(true);
    const tcp = connectMqtt('mqtt://localhost', options)!;
    assert.equal(tcp.options.port, 1883);
    tcp.on('error', () => {});
    tcp.end(true);
  });
});
