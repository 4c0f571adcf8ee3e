import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { createLimiter } from '@pallas/protocol';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from 'pino';
import { checkPublish, checkPublishFlags, checkSubscribe } from '../acl.js';
import { guardFrames } from '../frame-guard.js';
import { RateLimiter } from '../rate-limit.js';
import type { Broker, BrokerEvents, BrokerHealth, DeviceAuthenticator, MessageHandler, PublishOptions } from '../broker.js';
import { BoundedPersistence, type QueueBounds } from './bounded-persistence.js';
import { SESSION_LIMITS } from './session-limits.js';
import { TLS_CIPHERS } from '../../security/tls.js';

export interface EmbeddedBrokerOptions {
  /** Address of the TLS listener. */
  host: string;
  /** Address of the plain listener (default `host`): loopback unless one is given (docs/security.md). */
  plainHost?: string;
  /** Plain MQTT port; 0 = any free port, null = no plain listener (production). */
  port: number | null;
  /** MQTT over TLS; absent = no TLS listener. */
  tls?: { port: number; key: string | Buffer; cert: string | Buffer } | undefined;
  maxMessageBytes: number;
  /** Largest MQTT packet of any kind; larger ones close the connection before being buffered. */
  maxPacketBytes?: number;
  /** Per-device publish rate (messages/s, burst); beyond it messages are dropped. 0 = unlimited. */
  messageRate?: { perSec: number; burst: number };
  /** New connections per remote address (per s, burst); beyond it CONNACK 3. 0 = unlimited. */
  connectRate?: { perSec: number; burst: number; includeLoopback: boolean };
  /** Messages and bytes queued per session (offline or unacknowledged). Default `SESSION_LIMITS.queue`. */
  sessionQueue?: QueueBounds;
  authenticator: DeviceAuthenticator;
  logger: Logger;
}

// MQTT CONNACK return codes (3.1.1): 3 = server unavailable, 4 = bad user name or
// password, 5 = not authorized. Agents treat 4 and 5 as final (the device is retired) and 3
// as transient (reconnect with backoff), so a failure of ours must never answer 4 or 5.
const SERVER_UNAVAILABLE = 3;
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;
const LISTEN_BACKLOG = 8192;
/** Messages Aedes' emitter delivers at once (its default, said here because the gate below depends on it). */
const EMITTER_CONCURRENCY = 100;
/**
 * At most this many of the manager's own publishes are inside Aedes at once; the rest wait
 * for a place, in order.
 *
 * Why: Aedes hands every message to its emitter (mqemitter), which runs EMITTER_CONCURRENCY at
 * a time and queues the rest. Its queue is drained recursively: a queued message whose
 * delivery finishes at once (no subscriber, or the manager's own in-process handler) starts
 * the next on the same stack. A fan-out to 10,000 devices published without waiting for each
 * put thousands in that queue behind the deliveries still waiting for devices' sockets, and
 * the manager died of "Maximum call stack size exceeded" (broker contract test "takes the
 * manager's burst…"). The manager's publishes are the only deliveries that wait (devices
 * publish only to the manager's handlers), so keeping them below the emitter's concurrency
 * keeps its queue empty.
 */
const PUBLISHES_IN_FLIGHT = EMITTER_CONCURRENCY / 2;

function authError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

/**
 * Aedes running inside the manager. Only devices connect to it: the manager itself
 * subscribes in-process (no loopback client), so its handlers see every message once.
 */
export class EmbeddedBroker implements Broker {
  readonly kind = 'embedded';
  readonly #opts: Readonly<EmbeddedBrokerOptions>;
  readonly #events = new EventEmitter();
  #aedes: Aedes | undefined;
  readonly #servers: Server[] = [];
  readonly #clients = new Map<string, Client>();
  /** The manager's publishes into Aedes, PUBLISHES_IN_FLIGHT at a time. */
  readonly #gate = createLimiter(PUBLISHES_IN_FLIGHT);
  ports: { mqtt: number | null; mqtts: number | null } = { mqtt: null, mqtts: null };

  constructor(options: EmbeddedBrokerOptions) {
    this.#opts = Object.freeze({ ...options });
  }

  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): void {
    this.#events.on(event, listener);
  }

  #emit<E extends keyof BrokerEvents>(event: E, ...args: Parameters<BrokerEvents[E]>): void {
    this.#events.emit(event, ...args);
  }

  async start(): Promise<void> {
    const { authenticator, logger, maxMessageBytes, connectRate } = this.#opts;
    const messageLimiter = new RateLimiter(this.#opts.messageRate?.perSec ?? 0, this.#opts.messageRate?.burst ?? 0);
    const connectLimiter = new RateLimiter(connectRate?.perSec ?? 0, connectRate?.burst ?? 0);
    // Room for an oversized payload to reach authorizePublish (and be counted as such), while
    // still far below what the parser would otherwise buffer (256 MiB).
    const maxPacketBytes = this.#opts.maxPacketBytes ?? maxMessageBytes * 2 + 65_536;
    // Refusals already counted under their own reason. Aedes reports an error raised before
    // the client has an id (a refusal in preConnect) once more as a connectionError, which
    // would count it a second time as malformed.
    const counted = new WeakSet<Error>();
    // Refused subscriptions per connection: past a few, the device is not an agent.
    const refusedSubscriptions = new WeakMap<Client, number>();
    const persistence = new BoundedPersistence(
      this.#opts.sessionQueue ?? SESSION_LIMITS.queue,
      (clientId) => this.#emit('rejected', 'queue_full', clientId, 'session queue full: message not queued'),
      checkSubscribe,
    );
    const aedes = await Aedes.createBroker({
      persistence,
      concurrency: EMITTER_CONCURRENCY,
      // Devices keep long sessions; a slow link must not stall delivery to the others.
      drainTimeout: 30_000,
      connectTimeout: 10_000,
      maxClientsIdLength: 64,
      // Runs before Aedes hands a client id over from an open session to the new connection:
      // a connection refused here never disconnects the device whose id it claimed.
      authenticate: (client, username, password, done) => {
        // The connection rate is checked here rather than in preConnect: only a refusal from
        // authenticate gets a CONNACK (3, so agents back off and retry); preConnect just closes.
        const address = addressOf(client);
        if (address && (connectRate?.includeLoopback || !isLoopback(address)) && !connectLimiter.take(address)) {
          this.#emit('rejected', 'connect_rate', client.id, `too many connections from ${address}`);
          return done(authError('too many connections from this address', SERVER_UNAVAILABLE) as never, false);
        }
        authenticator.authenticate(client.id, username, password).then(
          (res) => {
            if (res.ok) {
              const previous = this.#clients.get(client.id);
              if (previous && previous !== client) this.#emit('takeover', client.id, addressOf(previous), addressOf(client));
              return done(null, true);
            }
            this.#emit('rejected', res.reason, client.id, `${res.reason.replace(/_/g, ' ')} for client id ${client.id} from ${addressOf(client)}`);
            // Blocked and pending devices hear "server unavailable": their agents keep retrying
            // with backoff and get in once unblocked or approved (docs/security.md).
            const code = res.reason === 'device_blocked' || res.reason === 'device_pending' ? SERVER_UNAVAILABLE : BAD_CREDENTIALS;
            done(authError(res.reason === 'device_blocked' ? 'device blocked' : res.reason === 'device_pending' ? 'device awaiting approval' : 'bad username or password', code) as never, false);
          },
          (err: unknown) => {
            logger.error({ err }, 'device authentication failed with an error');
            done(authError('server unavailable', SERVER_UNAVAILABLE) as never, false);
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        // client is null for wills published after the session is gone; those were checked
        // when the will was registered at connect time below.
        if (!client) return done(null);
        const flags = checkPublishFlags(packet.qos, packet.retain);
        if (flags) {
          const detail = `publish to ${packet.topic} with QoS ${packet.qos}${packet.retain ? ', retained' : ''}`;
          this.#emit('rejected', flags, client.id, detail);
          this.#emit('cutOff', client.id, flags, detail);
          return done(new Error(`publish refused: ${flags}`));
        }
        const reason = checkPublish(client.id, packet.topic, packet.payload.length, maxMessageBytes);
        if (!reason) {
          // A task result is never dropped: each answers a task the manager sent, so the manager
          // bounds them itself, and losing one would leave the task to time out. It still uses
          // up the device's budget, so the chatter around it is what gets dropped.
          const within = messageLimiter.take(client.id);
          if (within || packet.topic.endsWith('/task/result')) return done(null);
          // Over its rate: drop the message but keep the connection (a chatty device is not a
          // hostile one). Aedes can only refuse a publish by closing the connection, so the
          // message is re-addressed to a topic nobody subscribes to ('$' topics match no
          // wildcard) and the QoS 1 PUBACK still goes out, so the device does not resend it.
          this.#emit('rejected', 'rate_limited', client.id, `more than ${messageLimiter.ratePerSec} messages/s; dropped ${packet.topic}`);
          packet.topic = '$pallas/dropped';
          return done(null);
        }
        this.#emit('rejected', reason, client.id, `publish to ${packet.topic} (${packet.payload.length} bytes)`);
        done(new Error(`publish refused: ${reason}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        if (checkSubscribe(client.id, sub.topic)) return done(null, sub);
        const refused = (refusedSubscriptions.get(client) ?? 0) + 1;
        refusedSubscriptions.set(client, refused);
        if (refused > SESSION_LIMITS.maxRefusedSubscriptions) {
          if (refused === SESSION_LIMITS.maxRefusedSubscriptions + 1) {
            const detail = `more than ${SESSION_LIMITS.maxRefusedSubscriptions} refused subscriptions`;
            this.#emit('rejected', 'too_many_subscriptions', client.id, detail);
            this.#emit('cutOff', client.id, 'too_many_subscriptions', detail);
          }
          return done(new Error('too many refused subscriptions'));
        }
        this.#emit('rejected', 'subscribe_denied', client.id, `subscribe to ${sub.topic.slice(0, 200)}`);
        done(null, null); // SUBACK 0x80 for this filter; the connection stays up.
      },
      preConnect: (client, packet, done) => {
        // A will may only speak for the device's own presence topic.
        // The broker keeps a session's will until it fires: small, never retained, no QoS 2.
        const will = packet.will;
        const willRefusal = will && (
          checkPublish(packet.clientId, will.topic, will.payload.length, maxMessageBytes)
          ?? checkPublishFlags(will.qos ?? 0, Boolean(will.retain))
          ?? (will.payload.length > SESSION_LIMITS.maxWillBytes ? 'will_too_large' : null));
        if (willRefusal) {
          this.#emit('rejected', willRefusal, packet.clientId, `will on ${will.topic} (${will.payload.length} bytes, QoS ${will.qos}${will.retain ? ', retained' : ''})`);
          const err = authError('will not allowed', NOT_AUTHORIZED);
          counted.add(err);
          return done(err, false);
        }
        done(null, true);
      },
    });
    aedes.on('client', (client) => {
      this.#clients.set(client.id, client);
      this.#emit('connected', client.id);
    });
    aedes.on('clientDisconnect', (client) => {
      // A takeover by a new session of the same id fires this for the old one: only forget
      // the entry if it still points at the client that left.
      if (this.#clients.get(client.id) === client) {
        this.#clients.delete(client.id);
        messageLimiter.forget(client.id);
      }
      this.#emit('disconnected', client.id);
    });
    aedes.on('clientError', (client, err) => logger.debug({ client: client.id, err: err.message }, 'mqtt client error'));
    aedes.on('connectionError', (client, err) => {
      if (counted.has(err)) return;
      this.#emit('rejected', 'malformed', client.id ?? null, err.message);
    });
    this.#aedes = aedes;

    const handle = (socket: Duplex) => {
      guardFrames(socket, maxPacketBytes, (why) => this.#emit('rejected', 'packet_too_large', null, why));
      aedes.handle(socket);
    };
    if (this.#opts.port !== null) {
      this.ports.mqtt = await this.#listen(createServer(handle), this.#opts.port, this.#opts.plainHost);
    }
    const tls = this.#opts.tls;
    if (tls) {
      const server = createTlsServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true }, handle);
      // A client that fails the handshake never reaches Aedes; count it like other junk.
      server.on('tlsClientError', (err) => this.#emit('rejected', 'malformed', null, `TLS: ${err.message}`));
      this.ports.mqtts = await this.#listen(server, tls.port);
    }
  }

  async #listen(server: Server, port: number, host = this.#opts.host): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A reconnect storm (every device back at once after a restart) arrives faster than one
      // event loop accepts; Node's default backlog of 511 drops the rest of the SYNs and those
      // devices retry only after the kernel's SYN backoff (1, 3, 7, 15 s). The kernel caps the
      // value at net.core.somaxconn.
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.push(server);
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const servers = this.#servers.splice(0);
    const aedes = this.#aedes;
    this.#aedes = undefined;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.#clients.clear();
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    return this.#gate(() => this.#publishNow(topic, payload, options));
  }

  #publishNow(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const aedes = this.#requireStarted();
    return new Promise((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos, retain: false, dup: false },
        (err) => {
          if (err) return reject(err);
          this.#emit('published', topic);
          resolve();
        },
      );
    });
  }

  /** One manager: every subscription reaches every (the one) manager, so options do not matter. */
  subscribe(filter: string, handler: MessageHandler): Promise<void> {
    const aedes = this.#requireStarted();
    return new Promise((resolve) => {
      aedes.subscribe(
        filter,
        (packet: AedesPublishPacket, cb: () => void) => {
          try {
            handler(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
          } finally {
            cb();
          }
        },
        resolve,
      );
    });
  }

  disconnect(clientId: string): void {
    this.#clients.get(clientId)?.close();
  }

  addressOf(clientId: string): string | null {
    const client = this.#clients.get(clientId);
    return client ? addressOf(client) : null;
  }

  connectedCount(): number {
    return this.#clients.size;
  }

  health(): BrokerHealth {
    if (!this.#aedes) return { ok: false, detail: 'not started' };
    if (this.ports.mqtt === null && this.ports.mqtts === null) return { ok: false, detail: 'not listening' };
    return { ok: true };
  }

  #requireStarted(): Aedes {
    if (!this.#aedes) throw new Error('broker is not started');
    return this.#aedes;
  }
}

/** The remote address of a client's connection, IPv4-mapped IPv6 written as IPv4. */
function addressOf(client: Client): string | null {
  const address = (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress;
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}
