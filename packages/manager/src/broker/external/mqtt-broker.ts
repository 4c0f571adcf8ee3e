import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { BrokerAccounts } from '../accounts.js';
import type { Broker, BrokerEvents, BrokerHealth, MessageHandler, PublishOptions, SubscribeOptions } from '../broker.js';
import { sharedFilter, topicMatches } from './topic-match.js';

export interface ExternalBrokerOptions {
  /** `mqtt://` or `mqtts://`, with the manager's own credentials: `mqtts://user:pass@host:8883`. */
  url: string;
  /** PEM of the CA that signed the broker's certificate; absent = the system's CAs. */
  ca?: string | Buffer | undefined;
  /** The shared-subscription group every manager of the cluster joins. Default: `pallas`. */
  shareGroup?: string;
  /** First reconnect delay; doubles on each failed attempt up to `maxReconnectMs`. Default: 500 ms. */
  minReconnectMs?: number;
  /** Default: 10 s. */
  maxReconnectMs?: number;
  /** How long `start()` waits for the first connection before it fails. Default: 30 s. */
  startTimeoutMs?: number;
  /** Builds the device-accounts adapter over this connection (e.g. Mosquitto's dynamic security). */
  accounts?: (link: ControlLink) => BrokerAccounts;
  logger: Logger;
}

/** What an accounts adapter needs from the manager's broker connection. */
export interface ControlLink {
  publish(topic: string, payload: string): Promise<void>;
  /** A plain (not shared) subscription: control responses go to the manager that asked. */
  subscribe(filter: string, handler: MessageHandler): Promise<void>;
}

interface Subscription {
  filter: string;
  /** What is sent to the broker: the filter, or its `$share/<group>/` form. */
  wireFilter: string;
  handler: MessageHandler;
  /** Its MQTT 5 subscription identifier: the broker names it in each message it delivers through it. */
  id: number;
}

/**
 * QoS 1 messages in flight from the broker to one manager: MQTT's largest window. The manager
 * acknowledges each message as it reads it, so the window fills only while its event loop is
 * held up, and what it holds is on the broker (about 130 MB for 65,535 status reports of 2 KB;
 * Mosquitto's `memory_limit` caps the whole broker).
 */
const MANAGER_RECEIVE_MAXIMUM = 65_535;

/**
 * The manager as a client of an external MQTT broker shared by several managers.
 *
 * Why clean sessions and nothing retained: Mosquitto 2.0.11 (Debian's) does not restore the
 * `$share` subscriptions of a persistent session and sends retained messages to a new shared
 * subscriber. This client always connects with clean start and a session that expires at
 * disconnect, so there is never a stored session to restore: after every reconnect it
 * subscribes again itself (`#resubscribe`). It never publishes with the retain flag, and the
 * broker is configured with `retain_available false` (deploy/mosquitto/mosquitto.conf), so
 * no device can leave a retained message on a device topic either: nothing retained exists
 * for a shared subscribe to replay. What a clean session costs: messages published while this
 * manager is cut off are not kept for it; the other managers of the group receive device
 * messages meanwhile (a shared subscription delivers only to connected members), and this
 * manager emits `relinked` on its return so its services re-check what they hold in memory.
 *
 * Devices' connections are the broker's, not this manager's: it cannot count or address them
 * (`connectedCount()` and `addressOf()` return null) and cuts a device off through its
 * accounts (disabling its client), not with `disconnect()`.
 */
export class ExternalBroker implements Broker {
  readonly kind = 'external';
  readonly ports = { mqtt: null, mqtts: null };
  readonly accounts?: BrokerAccounts;
  readonly #opts: Readonly<ExternalBrokerOptions>;
  readonly #events = new EventEmitter();
  readonly #subscriptions: Subscription[] = [];
  #client: MqttClient | undefined;
  #connected = false;
  #everConnected = false;
  /**
   * Whether the broker takes subscription identifiers (CONNACK; MQTT 5 says absent = yes).
   * Without them a message is handed to every subscription whose filter matches its topic.
   */
  #subscriptionIds = true;
  #lastError: string | undefined;
  #delayMs: number;

  constructor(options: ExternalBrokerOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#delayMs = options.minReconnectMs ?? 500;
    if (options.accounts) {
      this.accounts = options.accounts({
        publish: (topic, payload) => this.publish(topic, payload, { qos: 1 }),
        subscribe: (filter, handler) => this.subscribe(filter, handler, { everyManager: true }),
      });
    }
  }

  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): void {
    this.#events.on(event, listener);
  }

  async start(): Promise<void> {
    const url = new URL(this.#opts.url);
    const secure = url.protocol === 'mqtts:';
    const options: IClientOptions = {
      // A fresh id per process: two managers must never take over each other's connection.
      clientId: `pallas-manager-${randomBytes(6).toString('hex')}`,
      username: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
      protocolVersion: 5,
      clean: true,
      // Receive Maximum: how many QoS 1 messages the broker may have sent this manager
      // unacknowledged. Without it Mosquitto applies its `max_inflight_messages` (20) and, past
      // those, its `max_queued_messages` (1,000) and `max_queued_bytes` (1 MiB): bounds sized
      // for a device, which Mosquitto 2.0 applies to every client alike. A fleet's burst of task
      // results or status reports then overflowed each manager's queue and Mosquitto dropped the
      // rest (results came back only when agents re-sent them; docs/scale-out.md).
      properties: { sessionExpiryInterval: 0, receiveMaximum: MANAGER_RECEIVE_MAXIMUM },
      // Subscriptions are made again by #resubscribe after every connect (see the class comment).
      resubscribe: false,
      reconnectPeriod: this.#delayMs,
      connectTimeout: 10_000,
      keepalive: 30,
      ...(process.env.DEBUG ? {} : { log: () => {} }),
      ...(secure ? { rejectUnauthorized: true, ...(this.#opts.ca ? { ca: this.#opts.ca } : {}) } : {}),
    };
    const target = `${url.protocol}//${url.host}`;
    const client = mqtt.connect(`${url.protocol}//${url.host}`, options);
    this.#client = client;
    client.on('message', (topic, payload, packet) => this.#dispatch(topic, payload, packet.properties?.subscriptionIdentifier));
    client.on('error', (err) => {
      this.#lastError = err.message;
      this.#opts.logger.warn({ err: err.message, broker: target }, 'external broker connection error');
    });
    client.on('close', () => {
      if (this.#connected) this.#opts.logger.warn({ broker: target }, 'lost the connection to the external broker; reconnecting');
      this.#connected = false;
      // Back off: mqtt.js reads reconnectPeriod each time it schedules the next attempt.
      client.options.reconnectPeriod = this.#delayMs;
      this.#delayMs = Math.min(this.#delayMs * 2, this.#opts.maxReconnectMs ?? 10_000);
    });
    client.on('connect', (connack) => {
      this.#subscriptionIds = connack.properties?.subscriptionIdentifiersAvailable !== false;
      batchWrites(client.stream);
      this.#lastError = undefined;
      this.#delayMs = this.#opts.minReconnectMs ?? 500;
      client.options.reconnectPeriod = this.#delayMs;
      if (!this.#everConnected) {
        this.#everConnected = true;
        this.#connected = true;
        return;
      }
      this.#opts.logger.info({ broker: target }, 'reconnected to the external broker');
      // Linked (healthy, publishing) only once the subscriptions are back: a request sent
      // before its reply's subscription is made again (dynamic security's control topic)
      // would lose the reply.
      this.#resubscribe(client).then(
        (linked) => { if (linked) this.#events.emit('relinked'); },
        (err: unknown) => {
          this.#lastError = `could not subscribe again: ${err instanceof Error ? err.message : String(err)}`;
          this.#opts.logger.error({ err }, 'could not subscribe again after reconnecting; dropping the connection to try again');
          // A half-made link would take device messages on some filters only: start over.
          client.stream?.destroy();
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`could not connect to the external broker ${target} within ${this.#opts.startTimeoutMs ?? 30_000} ms: ${this.#lastError ?? 'no answer'}`));
      }, this.#opts.startTimeoutMs ?? 30_000);
      const onConnect = () => { cleanup(); resolve(); };
      // Refused credentials will not get better by retrying: fail the start at once.
      const onError = (err: Error & { code?: number }) => {
        if (err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135) {
          cleanup();
          reject(new Error(`the external broker ${target} refused the manager's credentials: ${err.message}`));
        }
      };
      const cleanup = () => { clearTimeout(timer); client.off('connect', onConnect); client.off('error', onError); };
      client.on('connect', onConnect);
      client.on('error', onError);
    }).catch(async (err: unknown) => {
      await this.stop();
      throw err;
    });
  }

  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#connected = false;
    if (client) await client.endAsync(true).catch(() => {});
  }

  async publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const client = this.#requireConnected();
    // Never retained: see the class comment.
    await client.publishAsync(topic, payload, { qos: options.qos, retain: false });
    this.#events.emit('published', topic);
  }

  async subscribe(filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<void> {
    const group = this.#opts.shareGroup ?? 'pallas';
    const sub: Subscription = { filter, handler, wireFilter: options.everyManager ? filter : sharedFilter(group, filter), id: this.#subscriptions.length + 1 };
    if (!this.#client) throw new Error('broker is not started');
    this.#subscriptions.push(sub);
    // While the link is down it is made by #resubscribe on the next connect.
    if (this.#connected) await this.#subscribeOne(this.#client, sub);
  }

  async #subscribeOne(client: MqttClient, sub: Subscription): Promise<void> {
    const granted = await client.subscribeAsync(sub.wireFilter, { qos: 1, ...(this.#subscriptionIds ? { properties: { subscriptionIdentifier: sub.id } } : {}) });
    const refused = granted.find((g) => g.qos >= 0x80);
    if (refused) throw new Error(`the external broker refused the subscription to ${sub.wireFilter} (reason ${refused.qos})`);
  }

  /** Makes every subscription again, then marks the link up; false when the link went meanwhile. */
  async #resubscribe(client: MqttClient): Promise<boolean> {
    // By index, and marked up in the same step as the last check: a subscribe() that comes
    // while this runs is either made here or (once linked) by subscribe() itself.
    for (let i = 0; i < this.#subscriptions.length; i++) await this.#subscribeOne(client, this.#subscriptions[i]!);
    if (!client.connected || this.#client !== client) return false;
    this.#connected = true;
    return true;
  }

  /**
   * Hands a message to the subscription the broker delivered it through. A manager subscribes
   * to presence twice (shared and plain, `everyManager`), and the broker delivers each presence
   * message once per subscription: matched by topic alone, each of those copies went to both
   * handlers, so every manager handled every presence as if the shared copy were its own (it
   * re-sent the device's in-flight tasks, announced it and wrote it: four times per message
   * with three managers) instead of one manager of the group. The subscription identifier says
   * which subscription a copy is for; a broker without them gets the old matching by topic.
   */
  #dispatch(topic: string, payload: Buffer, ids: number | number[] | undefined): void {
    const subs = ids === undefined
      ? this.#subscriptions.filter((sub) => topicMatches(sub.filter, topic))
      : (Array.isArray(ids) ? ids : [ids]).map((id) => this.#subscriptions[id - 1]).filter((sub) => sub !== undefined);
    for (const sub of subs) {
      try {
        sub.handler(topic, payload);
      } catch (err) {
        this.#opts.logger.error({ err, topic }, 'a handler of a broker message failed');
      }
    }
  }

  /** Not possible from a client: the device is cut off through `accounts.disable`. */
  disconnect(_clientId: string): void {}

  addressOf(_clientId: string): string | null {
    return null;
  }

  connectedCount(): null {
    return null;
  }

  health(): BrokerHealth {
    if (!this.#client) return { ok: false, detail: 'not started' };
    if (!this.#connected) return { ok: false, detail: `not connected to the external broker${this.#lastError ? `: ${this.#lastError}` : ''}` };
    return { ok: true };
  }

  #requireConnected(): MqttClient {
    if (!this.#client) throw new Error('broker is not started');
    // mqtt.js would queue the message until the link returns; the callers (task outbox,
    // device commands) have their own re-send paths, so an outage is reported at once.
    if (!this.#connected) throw new Error('not connected to the external broker');
    return this.#client;
  }
}

/**
 * What the manager writes while it handles what one read brought goes out in one write, at the
 * end of that turn of the event loop. mqtt.js handles each incoming packet in a turn of its own
 * and uncorks after each: every QoS 1 message's PUBACK was a socket write (a syscall, and on
 * loopback the broker's side of TCP as well) of its own. Socket writes (`writev`) were the
 * largest item of each manager's CPU profile over a run of fan-outs, a quarter of its busy
 * time. Held to the end of the turn at most: nothing waits for a later event.
 */
function batchWrites(stream: MqttClient['stream']): void {
  let corked = false;
  stream.on('data', () => {
    if (corked) return;
    corked = true;
    stream.cork();
    setImmediate(() => {
      corked = false;
      stream.uncork();
    });
  });
}
