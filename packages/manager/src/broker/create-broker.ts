import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ManagerConfig } from '../config/config.js';
import type { TlsMaterial } from '../security/tls.js';
import type { Broker, DeviceAuthenticator } from './broker.js';
import { EmbeddedBroker } from './embedded/aedes-broker.js';
import { MosquittoDynsec } from './external/mosquitto-dynsec.js';
import { ExternalBroker } from './external/mqtt-broker.js';

/**
 * The broker adapter the config asks for: an external broker when `brokerUrl` is set (its
 * device accounts in Mosquitto's dynamic-security plugin), else Aedes inside this manager.
 */
export function createBroker(config: ManagerConfig, deps: { tls: TlsMaterial; authenticator: DeviceAuthenticator; logger: Logger }): Broker {
  const logger = deps.logger.child({ component: 'broker' });
  if (config.brokerUrl) {
    return new ExternalBroker({
      url: config.brokerUrl,
      ca: config.brokerCa ? readFileSync(config.brokerCa) : undefined,
      shareGroup: config.brokerShareGroup,
      accounts: (link) => new MosquittoDynsec(link),
      logger,
    });
  }
  return new EmbeddedBroker({
    host: config.mqttHost ?? '0.0.0.0',
    // Plain listeners carry passwords and tokens in clear: loopback unless an address is given.
    plainHost: config.mqttHost ?? '127.0.0.1',
    port: config.mqttPort ?? null,
    tls: { port: config.mqttsPort, key: deps.tls.key, cert: deps.tls.cert },
    maxMessageBytes: config.maxMessageBytes,
    messageRate: { perSec: config.deviceMessageRate, burst: config.deviceMessageRate * 10 },
    connectRate: { perSec: config.mqttConnectRate, burst: config.mqttConnectRate * 10, includeLoopback: config.mqttConnectRateLoopback },
    authenticator: deps.authenticator,
    logger,
  });
}

/** The broker URL devices are given at enrollment for an external broker: the managers' URL without their credentials. */
export function publicBrokerUrl(brokerUrl: string): string {
  const url = new URL(brokerUrl);
  return `${url.protocol}//${url.host}`;
}

/**
 * The CA certificates agents pin at enrollment: the manager's (HTTPS, downloads) and, with an
 * external broker behind `--broker-ca`, the broker's too (agents trust only what they pinned,
 * for MQTT as for HTTPS). One PEM bundle: Node reads every certificate in it.
 */
export function deviceCaBundle(config: ManagerConfig, managerCa: string | null): string | null {
  if (!config.brokerUrl || !config.brokerCa) return managerCa;
  const brokerCa = readFileSync(config.brokerCa, 'utf8').trim();
  return managerCa ? `${managerCa.trim()}\n${brokerCa}\n` : `${brokerCa}\n`;
}
