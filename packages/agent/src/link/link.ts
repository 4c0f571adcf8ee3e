import { EventEmitter } from 'node:events';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import type { ControlMessage, EnrollResponse, PresenceMessage, TaskAck, TaskCommand } from '@pallas/protocol';
import { CHANNEL_QOS, deviceCommandFilter, deviceTopic, parseDeviceTopic, type UpstreamChannel } from '@pallas/protocol/topics';
import { checkControlMessage, checkTaskAck, checkTaskCommand, decodeJson, type DeviceCheck } from '../checks/index.js';
import { AGENT_VERSION } from '../version.js';
import type { Logger } from '../util/line-logger.js';
import { describeError } from '../errors.js';
import { Backoff, type BackoffOptions } from '../util/backoff.js';
import { connectMqtt } from './mqtt-client.js';

// CONNACK codes that mean "this credential is no good": MQTT 3.1.1 4 (bad user name or
// password) and 5 (not authorized); MQTT 5 0x86 (134) and 0x87 (135).
const CREDENTIAL_REFUSED = new Set([4, 5, 134, 135]);

export interface LinkOptions {
  deviceId: string;
  mqtt: EnrollResponse['mqtt'];
  logger: Logger;
  /** Reconnect delays: full jitter, default base 1 s, cap 60 s. */
  backoff?: BackoffOptions;
  /**
   * A connection that stayed up this long resets the backoff; one dropped sooner keeps
   * growing it, so two agents fighting over one client id do not hammer the broker. Default 10 s.
   */
  stableAfterMs?: number;
  /** How long to wait for CONNACK. Default 30 s. */
  connectTimeoutMs?: number;
  /**
   * PEM CA for an mqtts:// URL: the only CA trusted (the one the manager handed out at
   * enrollment, or `--ca`). Without it the system's CAs are used.
   */
  ca?: string | undefined;
  /**
   * A credential rotation interrupted by a restart: connect with `mqtt.username`/`password`
   * (the new ones) and fall back to these if the broker refuses them.
   */
  fallback?: Login | undefined;
  /**
   * Asked when the broker refuses the credential (outside a rotation), before giving it up:
   * `invalid` (the manager says it is gone) ends the link with 'credential-rejected'; `retry`
   * reconnects after the usual backoff (the manager re-made the broker's account, or the device
   * is pending or blocked and waits). Absent: every refusal is final, as with the embedded broker.
   */
  checkRefusal?: (login: Login) => Promise<'retry' | 'invalid'>;
}

/** The broker login of a credential: a rotation on an external broker changes both. */
export interface Login {
  username: string;
  password: string;
}

export interface LinkEvents {
  /**
   * Connected, the command subscription granted, presence `online` sent. In that order: the
   * manager re-sends pending tasks when it sees `online`, so they must find the subscription.
   */
  online: [];
  /** The connection is gone (and, unless stopped or refused, a reconnect is scheduled). */
  offline: [reason: string];
  /** A valid `cmd/control` message. */
  control: [message: ControlMessage];
  /** A valid `cmd/task` message (run or cancel). */
  task: [command: TaskCommand];
  /** A valid `cmd/task-ack` message. */
  'task-ack': [ack: TaskAck];
  /** The broker refused the credential; the link stopped reconnecting. */
  'credential-rejected': [error: Error];
  /** A rotated login worked: it is the device's credential from now on. */
  'credential-confirmed': [login: Login];
  /** A rotated password was refused; the link went back to the previous one. */
  'rotation-failed': [error: Error];
}

/**
 * The device's one MQTT connection. Reconnects itself with exponential backoff and full
 * jitter (mqtt.js's own fixed `reconnectPeriod` is off). Persistent session (`clean: false`)
 * + QoS 1 everywhere, and the in-memory outgoing store is kept across reconnects, so a
 * message published while offline goes out once the link is back.
 */
export class Link extends EventEmitter<LinkEvents> {
  readonly #opts: Readonly<LinkOptions>;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  #client: MqttClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #connectedAt = 0;
  #online = false;
  #closing = false;
  #refused = false;
  /** The login to go back to while a rotated one has not connected yet. */
  #fallback: Login | undefined;

  constructor(options: LinkOptions) {
    super();
    this.#opts = Object.freeze({ ...options });
    this.#log = options.logger;
    this.#backoff = new Backoff({ baseMs: 1000, capMs: 60_000, ...options.backoff });
  }

  get online(): boolean {
    return this.#online;
  }

  /** Starts connecting; returns at once. Progress is reported through events. */
  start(): void {
    if (this.#client || this.#closing) return;
    const { deviceId, mqtt: m } = this.#opts;
    this.#fallback = this.#opts.fallback;
    const secure = m.url.startsWith('mqtts:') || m.url.startsWith('wss:');
    const will: PresenceMessage = { state: 'offline', reason: 'connection lost' };
    const options: IClientOptions = {
      clientId: m.clientId,
      username: m.username,
      password: m.password,
      clean: false,
      keepalive: m.keepaliveSec,
      reconnectPeriod: 0,
      connectTimeout: this.#opts.connectTimeoutMs ?? 30_000,
      protocolVersion: 4,
      // Off: mqtt-packet's number cache is 65,536 two-byte Buffers made at the first packet, some
      // 7 MiB of heap kept for the process's life (docs/benchmarks.md, "Agent footprint"); a
      // device sends a few packets a minute, each number allocated when written costs nothing.
      writeCache: false,
      // mqtt.js traces every packet through the `debug` module unless given its own logger; the
      // check per call showed in a fan-out's profile. `DEBUG=mqttjs*` still turns it on.
      ...(process.env.DEBUG ? {} : { log: () => {} }),
      will: { topic: deviceTopic(deviceId, 'presence'), payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: false },
      // `ca` replaces the system's CAs: a server whose certificate does not chain to the pinned
      // CA fails the handshake, and the link retries with backoff (it never falls back to plain).
      ...(secure ? { rejectUnauthorized: true, ...(this.#opts.ca ? { ca: this.#opts.ca } : {}) } : {}),
    };
    // mqtt:// and mqtts:// with mqtt.js's client alone; anything else (ws://, wss://) through
    // the whole of mqtt.js, loaded for it (until then, publishing fails as if closed).
    const client = connectMqtt(m.url, options);
    if (client) this.#attach(client);
    else {
      void import('mqtt').then(
        (mqtt) => !this.#closing && !this.#client && this.#attach(mqtt.default.connect(m.url, options)),
        (err: unknown) => this.#log.error({ err: describeError(err) }, 'cannot load the MQTT client'),
      );
    }
  }

  #attach(client: MqttClient): void {
    this.#client = client;
    client.on('connect', () => this.#onConnect(client));
    client.on('close', () => this.#onClose());
    client.on('error', (err) => this.#onError(err));
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
  }

  /**
   * Publishes JSON on one of the device's upstream channels, with the channel's QoS
   * (`CHANNEL_QOS`). While offline the message waits in mqtt.js's outgoing store; the promise
   * settles on PUBACK (QoS 1) or once written (QoS 0).
   */
  publish(channel: UpstreamChannel, message: unknown): Promise<void> {
    const client = this.#client;
    if (!client || this.#closing) return Promise.reject(new Error('link is closed'));
    // Nothing is retained: the broker would have to match every retained message against
    // each new subscription, which grows with the fleet squared.
    const publishOptions: IClientPublishOptions = { qos: CHANNEL_QOS[channel], retain: false };
    return new Promise((resolve, reject) => {
      client.publish(deviceTopic(this.#opts.deviceId, channel), JSON.stringify(message), publishOptions, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  /**
   * Disconnects cleanly (no last will). With `presence: true` it first says `offline`
   * waiting at most `timeoutMs` for the broker to take it.
   */
  async close(options: { presence?: { reason: string }; timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return;
    const client = this.#client;
    const timeoutMs = options.timeoutMs ?? 2000;
    if (client && options.presence && this.#online) {
      const offline: PresenceMessage = { state: 'offline', at: new Date().toISOString(), reason: options.presence.reason };
      await withTimeout(this.publish('presence', offline), timeoutMs).catch((err: unknown) =>
        this.#log.warn({ err: describeError(err) }, 'could not publish offline presence'),
      );
    }
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!client) return;
    // A graceful end waits for in-flight acks; a dead link would never give them.
    const ended = new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    const timedOut = await withTimeout(ended, timeoutMs).then(() => false, () => true);
    if (timedOut) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    client.removeAllListeners();
    // A late socket error after close must not become an unhandled 'error'.
    client.on('error', () => {});
    this.#setOffline('link closed');
  }

  /**
   * Switches to a new password (credential rotation): reconnects with it now, keeping the
   * current one to go back to if the broker refuses the new one. 'credential-confirmed' or
   * 'rotation-failed' tells the outcome.
   */
  rotate(password: string, username?: string): void {
    const client = this.#client;
    if (!client || this.#closing) return;
    this.#fallback ??= loginOf(client);
    client.options.password = password;
    if (username !== undefined) client.options.username = username;
    this.#log.info('reconnecting with a rotated credential');
    client.stream.destroy();
  }

  #onConnect(client: MqttClient): void {
    this.#connectedAt = Date.now();
    if (this.#fallback !== undefined) {
      this.#fallback = undefined;
      this.emit('credential-confirmed', loginOf(client));
    }
    const { deviceId } = this.#opts;
    this.#log.debug('mqtt connected');
    client.subscribe(deviceCommandFilter(deviceId), { qos: 1 }, (err, granted) => {
      if (this.#client !== client || this.#closing || !client.connected) return; // that connection is gone
      if (err || granted?.some((g) => g.qos === 128)) {
        // Online without commands would make the manager send tasks into the void. Drop the
        // connection instead: the reconnect (with backoff) subscribes again.
        this.#log.error({ err: err ? describeError(err) : undefined, granted }, 'command subscription failed; reconnecting');
        client.stream.destroy();
        return;
      }
      // The username tells a manager on an external broker which of the device's broker
      // accounts is live, so it can delete the other after a rotation.
      const online: PresenceMessage = { state: 'online', at: new Date().toISOString(), agentVersion: AGENT_VERSION, username: client.options.username as string };
      this.publish('presence', online).catch((e: unknown) =>
        this.#log.debug({ err: describeError(e) }, 'online presence not acknowledged'),
      );
      this.#online = true;
      this.emit('online');
    });
  }

  #onError(err: Error & { code?: unknown }): void {
    if (typeof err.code === 'number' && CREDENTIAL_REFUSED.has(err.code) && this.#fallback !== undefined && this.#client) {
      // The rotated login did not work: go back to the one that did; the reconnect uses it.
      this.#client.options.password = this.#fallback.password;
      this.#client.options.username = this.#fallback.username;
      this.#fallback = undefined;
      this.#log.error({ code: err.code }, 'broker refused the rotated credential; keeping the previous one');
      this.emit('rotation-failed', err);
      return;
    }
    if (typeof err.code === 'number' && CREDENTIAL_REFUSED.has(err.code)) {
      // mqtt.js closes the connection right after; #onClose sees #refused and stays down.
      this.#refused = true;
      const check = this.#opts.checkRefusal;
      if (!check || !this.#client) {
        this.#log.error({ code: err.code }, `broker refused the credential: ${err.message}`);
        this.emit('credential-rejected', err);
        return;
      }
      // An external broker refuses a pending or blocked device, or one whose account it lost:
      // only the manager can say whether the credential is really gone.
      this.#log.warn({ code: err.code }, `broker refused the credential (${err.message}); asking the manager whether it is still valid`);
      check(loginOf(this.#client)).then(
        (verdict) => {
          if (this.#closing) return;
          if (verdict === 'invalid') {
            this.#log.error({ code: err.code }, 'the manager says this credential is no longer valid');
            this.emit('credential-rejected', err);
            return;
          }
          this.#refused = false;
          this.#scheduleReconnect(false);
        },
        (checkErr: unknown) => {
          // Only an abort (the agent stopping) ends up here: the check retries by itself.
          this.#log.debug({ err: describeError(checkErr) }, 'refusal check ended');
        },
      );
      return;
    }
    this.#log.debug({ err: err.message }, 'mqtt error');
  }

  #onClose(): void {
    const wasOnline = this.#online;
    this.#setOffline(this.#refused ? 'credential rejected' : 'connection lost');
    if (this.#refused) return;
    this.#scheduleReconnect(wasOnline && Date.now() - this.#connectedAt >= (this.#opts.stableAfterMs ?? 10_000));
  }

  #scheduleReconnect(stable: boolean): void {
    if (this.#closing || this.#refused || this.#timer) return;
    if (stable) this.#backoff.reset();
    const delay = this.#backoff.next();
    this.#log.info({ delayMs: delay, attempt: this.#backoff.attempt }, 'mqtt disconnected; reconnecting');
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const client = this.#client;
      if (!client || this.#closing) return;
      // reconnect() without stores would swap in empty ones and lose queued QoS 1 messages.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delay);
  }

  #setOffline(reason: string): void {
    if (!this.#online) return;
    this.#online = false;
    this.emit('offline', reason);
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.deviceId !== this.#opts.deviceId) {
      this.#log.warn({ topic }, 'dropping message on a foreign topic');
      return;
    }
    switch (parsed.channel) {
      case 'cmd/control': {
        const message = this.#accept(topic, payload, checkControlMessage, 'dropping invalid control message');
        if (message) this.emit('control', message);
        return;
      }
      case 'cmd/task': {
        const command = this.#accept(topic, payload, checkTaskCommand, 'dropping invalid task command');
        if (command) this.emit('task', command);
        return;
      }
      case 'cmd/task-ack': {
        const ack = this.#accept(topic, payload, checkTaskAck, 'dropping invalid task ack');
        if (ack) this.emit('task-ack', ack);
        return;
      }
      default:
        this.#log.warn({ topic }, 'dropping message on an unknown channel');
    }
  }

  /**
   * The message if it is valid, checked synchronously (messages are handled in the order they
   * came); else undefined, and the refusal logged once its explanation is ready.
   */
  #accept<T>(topic: string, payload: Buffer, check: DeviceCheck<T>, refusal: string): T | undefined {
    const decoded = decodeJson(payload);
    if (decoded.ok && check.check(decoded.value)) return decoded.value;
    const log = this.#log;
    if (!decoded.ok) log.warn({ topic, error: decoded.error }, refusal);
    else void check.explain(decoded.value).then((error) => log.warn({ topic, error }, refusal), () => log.warn({ topic }, refusal));
    return undefined;
  }
}

function loginOf(client: MqttClient): Login {
  return { username: client.options.username ?? '', password: String(client.options.password ?? '') };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
