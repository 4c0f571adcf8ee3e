import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from 'pino';
import { checkPublish, checkSubscribe } from '../acl.js';
import type { Broker, BrokerEvents, DeviceAuthenticator, MessageHandler, PublishOptions } from '../broker.js';

export interface EmbeddedBrokerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  maxMessageBytes: number;
  authenticator: DeviceAuthenticator;
  logger: Logger;
}

// MQTT CONNACK return codes (3.1.1): 3 = server unavailable, 4 = bad user name or
// password, 5 = not authorized. Agents treat 4 and 5 as final (the device is retired) and 3
// as transient (reconnect with backoff), so a failure of ours must never answer 4 or 5.
const SERVER_UNAVAILABLE = 3;
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;

function authError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

/**
 * Aedes running inside the manager. Only devices connect to it: the manager itself
 * subscribes in-process (no loopback client), so its handlers see every message once.
 */
export class EmbeddedBroker implements Broker {
  readonly #opts: Readonly<EmbeddedBrokerOptions>;
  readonly #events = new EventEmitter();
  #aedes: Aedes | undefined;
  #server: Server | undefined;
  readonly #clients = new Map<string, Client>();
  ports: { mqtt: number | null } = { mqtt: null };

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
    const { authenticator, logger, maxMessageBytes } = this.#opts;
    // Refusals already counted under their own reason. Aedes reports an error raised before
    // the client has an id (a refusal in preConnect) once more as a connectionError, which
    // would count it a second time as malformed.
    const counted = new WeakSet<Error>();
    const aedes = await Aedes.createBroker({
      // Devices keep long sessions; a slow link must not stall delivery to the others.
      drainTimeout: 30_000,
      connectTimeout: 10_000,
      maxClientsIdLength: 64,
      authenticate: (client, username, password, done) => {
        authenticator.authenticate(client.id, username, password).then(
          (ok) => {
            if (ok) return done(null, true);
            this.#emit('rejected', 'auth_failed', client.id, `bad credential for client id ${client.id}`);
            done(authError('bad username or password', BAD_CREDENTIALS) as never, false);
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
        const reason = checkPublish(client.id, packet.topic, packet.payload.length, maxMessageBytes);
        if (!reason) return done(null);
        this.#emit('rejected', reason, client.id, `publish to ${packet.topic} (${packet.payload.length} bytes)`);
        done(new Error(`publish refused: ${reason}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        if (checkSubscribe(client.id, sub.topic)) return done(null, sub);
        this.#emit('rejected', 'subscribe_denied', client.id, `subscribe to ${sub.topic}`);
        done(null, null); // SUBACK 0x80 for this filter; the connection stays up.
      },
      preConnect: (client, packet, done) => {
        // A will may only speak for the device's own presence topic.
        const will = packet.will;
        if (will && checkPublish(packet.clientId, will.topic, will.payload.length, maxMessageBytes)) {
          this.#emit('rejected', 'foreign_topic', packet.clientId, `will on ${will.topic}`);
          const err = authError('will topic not allowed', NOT_AUTHORIZED);
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
      if (this.#clients.get(client.id) === client) this.#clients.delete(client.id);
      this.#emit('disconnected', client.id);
    });
    aedes.on('clientError', (client, err) => logger.debug({ client: client.id, err: err.message }, 'mqtt client error'));
    aedes.on('connectionError', (client, err) => {
      if (counted.has(err)) return;
      this.#emit('rejected', 'malformed', client.id ?? null, err.message);
    });
    this.#aedes = aedes;

    const server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.ports = { mqtt: (server.address() as AddressInfo).port };
  }

  async stop(): Promise<void> {
    const server = this.#server;
    const aedes = this.#aedes;
    this.#server = undefined;
    this.#aedes = undefined;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#clients.clear();
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const aedes = this.#requireStarted();
    return new Promise((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos, retain: options.retain ?? false, dup: false },
        (err) => {
          if (err) return reject(err);
          this.#emit('published', topic);
          resolve();
        },
      );
    });
  }

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

  connectedCount(): number {
    return this.#clients.size;
  }

  #requireStarted(): Aedes {
    if (!this.#aedes) throw new Error('broker is not started');
    return this.#aedes;
  }
}
