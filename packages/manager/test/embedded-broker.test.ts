/**
 * The embedded broker's CONNACK codes. Agents treat 4/5 as final (they mark the device
 * retired and stop) and 3 as transient, so an internal failure must answer 3.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { EmbeddedBroker } from '../src/broker/embedded/aedes-broker.js';
import type { DeviceAuthenticator } from '../src/broker/broker.js';
import { tryConnect } from './support.js';

const id = '0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a';
const creds = { clientId: id, username: id, password: 'pw' };
const brokers: EmbeddedBroker[] = [];
after(() => Promise.all(brokers.map((b) => b.stop())));

async function brokerWith(authenticator: DeviceAuthenticator): Promise<string> {
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, maxMessageBytes: 65_536, authenticator, logger: pino({ level: 'silent' }) });
  brokers.push(broker);
  await broker.start();
  return `mqtt://127.0.0.1:${broker.ports.mqtt}`;
}

describe('embedded broker authentication', () => {
  it('answers a failing authenticator with CONNACK 3 (server unavailable), not a refusal', async () => {
    const url = await brokerWith({ authenticate: () => Promise.reject(new Error('database is down')) });
    const outcome = await tryConnect(url, creds);
    assert.equal(outcome.ok, false);
    assert.equal((outcome as { code?: number }).code, 3);
  });

  it('answers a wrong credential with CONNACK 4', async () => {
    const url = await brokerWith({ authenticate: () => Promise.resolve({ ok: false as const, reason: 'auth_failed' as const }) });
    const outcome = await tryConnect(url, creds);
    assert.equal((outcome as { code?: number }).code, 4);
  });
});
