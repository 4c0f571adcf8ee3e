/** The broker contract (broker-contract.ts) on the embedded Aedes broker. */
import { pino } from 'pino';
import { EmbeddedBroker } from '../src/broker/embedded/aedes-broker.js';
import type { Broker } from '../src/broker/broker.js';
import { brokerContract } from './broker-contract.js';

brokerContract('embedded', { multipleManagers: false, restartable: false }, async () => {
  // One broker per manager: each test's manager gets its own, devices connect to the last one.
  let current: EmbeddedBroker | undefined;
  const logins = new Map<string, string>();
  const fixture = {
    deviceUrl: '',
    async manager(): Promise<Broker> {
      const broker = new EmbeddedBroker({
        host: '127.0.0.1', port: 0, maxMessageBytes: 65_536, logger: pino({ level: 'silent' }),
        authenticator: {
          authenticate: async (clientId, username, password) =>
            username === clientId && password?.toString() === logins.get(clientId) ? { ok: true } : { ok: false, reason: 'auth_failed' },
        },
      });
      await broker.start();
      current = broker;
      fixture.deviceUrl = `mqtt://127.0.0.1:${broker.ports.mqtt}`;
      return broker;
    },
    async device(deviceId: string) {
      logins.set(deviceId, `pw-${deviceId}`);
      return { clientId: deviceId, username: deviceId, password: `pw-${deviceId}` };
    },
    async kick(broker: Broker, deviceId: string) {
      broker.disconnect(deviceId);
    },
    async cleanup() {
      await current?.stop();
    },
  };
  return fixture;
});
