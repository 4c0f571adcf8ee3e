import {
  PresenceMessage, StatusMessage, checker, parseDeviceTopic, upstreamFilter, type UpstreamChannel,
} from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Broker, RejectReason } from '../../broker/broker.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { StatusBuffer } from '../../services/devices/status-buffer.js';

const presence = checker(PresenceMessage);
const status = checker(StatusMessage);

/**
 * Receives what devices publish, validates it against the shared schemas and hands it to
 * the services. Anything malformed is counted, logged and dropped: it never reaches the
 * store and never stops the manager. The broker's ACL already confines a device to its own
 * topics; the router checks the topic shape again because an external broker may be
 * configured less strictly.
 */
export class DeviceRouter {
  readonly #broker: Broker;
  readonly #status: StatusBuffer;
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(deps: { broker: Broker; status: StatusBuffer; metrics: Metrics; logger: Logger }) {
    this.#broker = deps.broker;
    this.#status = deps.status;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
  }

  async start(): Promise<void> {
    await this.#broker.subscribe(upstreamFilter('presence'), (t, p) => this.#handle('presence', t, p));
    await this.#broker.subscribe(upstreamFilter('status'), (t, p) => this.#handle('status', t, p));
  }

  #reject(reason: RejectReason, topic: string, detail: string): void {
    this.#metrics.mqttRejected.inc({ reason });
    this.#logger.warn({ topic, reason, detail }, 'device message rejected');
  }

  #handle(channel: UpstreamChannel, topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.channel !== channel) return this.#reject('unknown_topic', topic, 'unexpected topic shape');
    const now = new Date().toISOString();
    if (channel === 'presence') {
      const msg = presence.parseJson(payload);
      if (!msg.ok) return this.#reject('malformed', topic, msg.error);
      this.#metrics.mqttMessagesIn.inc({ channel });
      this.#status.offer(parsed.deviceId, { presence: msg.value.state, lastSeenAt: now });
      return;
    }
    const msg = status.parseJson(payload);
    if (!msg.ok) return this.#reject('malformed', topic, msg.error);
    this.#metrics.mqttMessagesIn.inc({ channel });
    const { facts, vms, seq } = msg.value;
    this.#status.offer(parsed.deviceId, { presence: 'online', lastSeenAt: now, facts, vms, seq });
  }
}
