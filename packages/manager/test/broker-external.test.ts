/**
 * The broker contract (broker-contract.ts) on the external adapter: managers as mqtt.js
 * clients of Debian's Mosquitto 2 (its own instance on a free port), device accounts in its
 * dynamic-security plugin.
 */
import { it } from 'node:test';
import { pino } from 'pino';
import { mosquittoMissingReason, skipUnless, startMosquitto, waitFor, type RunningMosquitto } from '@pallas/testkit';
import { MosquittoDynsec } from '../src/broker/external/mosquitto-dynsec.js';
import { ExternalBroker } from '../src/broker/external/mqtt-broker.js';
import type { Broker } from '../src/broker/broker.js';
import { brokerContract } from './broker-contract.js';

const skip = skipUnless(mosquittoMissingReason());

if (!skip) {
  brokerContract('external (Mosquitto 2 with dynamic security)', { multipleManagers: true, restartable: true }, async () => {
    const mosquitto: RunningMosquitto = await startMosquitto();
    const admin = new ExternalBroker({ url: mosquitto.managerUrl, accounts: (link) => new MosquittoDynsec(link), logger: pino({ level: 'silent' }) });
    await admin.start();
    return {
      deviceUrl: mosquitto.url,
      async manager(): Promise<Broker> {
        const broker = new ExternalBroker({
          url: mosquitto.managerUrl, accounts: (link) => new MosquittoDynsec(link), logger: pino({ level: 'silent' }),
          minReconnectMs: 100, maxReconnectMs: 1000,
        });
        await broker.start();
        return broker;
      },
      async device(deviceId: string) {
        // After a broker restart this connection may still be on its way back.
        await waitFor('the fixture\'s own broker link', () => admin.health().ok, { timeoutMs: 20_000 });
        const password = `pw-${deviceId}`;
        await admin.accounts!.create({ username: deviceId, clientId: deviceId, password });
        return { clientId: deviceId, username: deviceId, password };
      },
      async kick(broker: Broker, _deviceId: string, login: { username: string }) {
        await broker.accounts!.disable(login.username);
      },
      stopBroker: () => mosquitto.stop(),
      // restart() after stop() only starts it (same port, config and dynamic-security file).
      startBroker: () => mosquitto.restart(),
      async cleanup() {
        await admin.stop();
        await mosquitto.cleanup();
      },
    };
  });
} else {
  it('broker contract: external', { skip }, () => {});
}
