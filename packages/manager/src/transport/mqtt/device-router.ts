import {
  PresenceMessage, StatusMessage, TaskProgress, TaskResult, checker, parseDeviceTopic, upstreamFilter, type UpstreamChannel,
} from '@pallas/protocol';
import type { Logger } from 'pino';
import type { Broker, RejectReason } from '../../broker/broker.js';
import type { Service } from '../../lifecycle.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { DeviceActivity } from '../../services/devices/device-activity.js';
import type { DeviceInventory } from '../../services/devices/device-inventory.js';
import type { StatusBuffer } from '../../services/devices/status-buffer.js';
import type { TaskReports } from '../../services/tasks/task-reports.js';

const presence = checker(PresenceMessage);
const status = checker(StatusMessage);
const progress = checker(TaskProgress);
const result = checker(TaskResult);

/**
 * Receives what devices publish, validates it against the shared schemas and hands it to
 * the services. Anything malformed is counted, logged and dropped: it never reaches the
 * store and never stops the manager. The broker's ACL already confines a device to its own
 * topics; the router checks the topic shape again because an external broker may be
 * configured less strictly.
 */
export class DeviceRouter implements Service {
  readonly name = 'device router';
  readonly #broker: Broker;
  readonly #status: StatusBuffer;
  readonly #activity: DeviceActivity;
  readonly #inventory: DeviceInventory;
  readonly #tasks: TaskReports;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  #stopped = false;

  /** Told which broker username a device logged in with (its presence says; external broker). */
  readonly #onUsername: ((deviceId: string, username: string) => void) | undefined;

  constructor(deps: {
    broker: Broker; status: StatusBuffer; activity: DeviceActivity; inventory: DeviceInventory; tasks: TaskReports; metrics: Metrics; logger: Logger;
    onUsername?: (deviceId: string, username: string) => void;
  }) {
    this.#onUsername = deps.onUsername;
    this.#broker = deps.broker;
    this.#status = deps.status;
    this.#activity = deps.activity;
    this.#inventory = deps.inventory;
    this.#tasks = deps.tasks;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // With several managers on an external broker, each device message goes to one of them
    // (a shared subscription), which handles it once. Presence also reaches every manager, so
    // that each one knows which devices can receive commands (docs/scale-out.md).
    for (const channel of ['presence', 'status', 'task/progress', 'task/result'] as const) {
      await this.#broker.subscribe(upstreamFilter(channel), (t, p) => this.#handle(channel, t, p));
    }
    if (this.#broker.kind === 'external') {
      await this.#broker.subscribe(upstreamFilter('presence'), (t, p) => this.#observePresence(t, p), { everyManager: true });
    }
  }

  /** The broker port cannot unsubscribe; its own stop ends the subscriptions. Until then, drop. */
  async stop(): Promise<void> {
    this.#stopped = true;
  }

  #observePresence(topic: string, payload: Buffer): void {
    if (this.#stopped) return;
    const deviceId = parseDeviceTopic(topic)?.deviceId;
    const msg = presence.parseJson(payload);
    // Rejections are counted by the manager that handles the message, not once per manager.
    if (deviceId && msg.ok) this.#activity.observed(deviceId, msg.value.state);
  }

  #reject(reason: RejectReason, topic: string, detail: string): void {
    this.#metrics.mqttRejected.inc({ reason });
    this.#logger.warn({ topic, reason, detail }, 'device message rejected');
  }

  #handle(channel: UpstreamChannel, topic: string, payload: Buffer): void {
    if (this.#stopped) return;
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.channel !== channel) return this.#reject('unknown_topic', topic, 'unexpected topic shape');
    const { deviceId } = parsed;
    const now = new Date().toISOString();
    switch (channel) {
      case 'presence': {
        const msg = presence.parseJson(payload);
        if (!msg.ok) return this.#reject('malformed', topic, msg.error);
        this.#metrics.mqttMessagesIn.inc({ channel });
        // A last will (no `at`: written at connect time) is the broker's message, not the
        // device's: the device's last contact stays the time of its last message.
        const receivedAt = msg.value.state === 'online' || msg.value.at !== undefined ? now : undefined;
        this.#status.offer(deviceId, { presence: msg.value.state, ...(receivedAt ? { lastSeenAt: receivedAt } : { heardAt: now }) });
        this.#activity.presence(deviceId, msg.value.state, receivedAt);
        if (msg.value.state === 'online' && msg.value.username) this.#onUsername?.(deviceId, msg.value.username);
        return;
      }
      case 'status': {
        const msg = status.parseJson(payload);
        if (!msg.ok) return this.#reject('malformed', topic, msg.error);
        this.#metrics.mqttMessagesIn.inc({ channel });
        const { facts, vms, seq } = msg.value;
        this.#status.offer(deviceId, { presence: 'online', lastSeenAt: now, facts, seq });
        this.#activity.status(deviceId, now);
        this.#inventory.reported(deviceId, vms);
        return;
      }
      case 'task/progress': {
        const msg = progress.parseJson(payload);
        if (!msg.ok) return this.#reject('malformed', topic, msg.error);
        this.#metrics.mqttMessagesIn.inc({ channel });
        this.#tasks.progress(deviceId, msg.value);
        return;
      }
      case 'task/result': {
        const msg = result.parseJson(payload);
        if (!msg.ok) return this.#reject('malformed', topic, msg.error);
        this.#metrics.mqttMessagesIn.inc({ channel });
        this.#tasks.result(deviceId, msg.value);
        return;
      }
      default:
        return this.#reject('unknown_topic', topic, `no handler for ${channel}`);
    }
  }
}
