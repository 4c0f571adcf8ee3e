// A test double of the manager: a tiny HTTP server answering POST /api/v1/enroll and an
// embedded Aedes broker that authenticates the credentials it handed out. Loopback and
// ephemeral ports only. Not the real manager: end-to-end tests use that.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import type { EnrollRequest, EnrollResponse } from '@pallas/protocol';

export interface Published {
  clientId: string | null;
  topic: string;
  json: unknown;
  retain: boolean;
}

export type EnrollHandler = (req: EnrollRequest, fake: FakeManager) => { status: number; body: unknown } | undefined;

export class FakeManager {
  http!: HttpServer;
  net!: NetServer;
  aedes!: Aedes;
  httpUrl = '';
  mqttPort = 0;
  readonly passwords = new Map<string, string>();
  readonly enrollRequests: EnrollRequest[] = [];
  readonly published: Published[] = [];
  readonly sockets = new Set<Socket>();
  connectAttempts = 0;
  /** CONNACK return codes to answer the next connection attempts with, whatever their credential. */
  readonly refuseNext: number[] = [];
  statusIntervalSec = 60;
  keepaliveSec = 30;
  /** Delay before answering an enrollment, in ms. */
  enrollDelayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Return a response to override the default answer, or undefined for the default. */
  onEnroll: EnrollHandler | undefined;
  /** Bodies of POST /api/v1/enroll/status (an agent asking about a refused credential). */
  readonly statusRequests: Array<{ deviceId: string; secret: string }> = [];
  /** Answers POST /api/v1/enroll/status; undefined: 404, as a manager before the route. */
  onStatus: ((request: { deviceId: string; secret: string }, fake: FakeManager) => { status: number; body: unknown }) | undefined;

  static async start(): Promise<FakeManager> {
    const fake = new FakeManager();
    await fake.#startBroker();
    await fake.startMqtt(0);
    await fake.#startHttp();
    return fake;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  async #startBroker(): Promise<void> {
    this.aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        this.connectAttempts++;
        const forced = this.refuseNext.shift();
        if (forced !== undefined) return done(Object.assign(new Error(`refused with ${forced}`), { returnCode: forced }) as never, false);
        const ok = username !== undefined && this.passwords.get(username) === password?.toString() && client.id === username;
        if (ok) return done(null, true);
        done(Object.assign(new Error('bad username or password'), { returnCode: 4 }) as never, false);
      },
    });
    this.aedes.on('publish', (packet, client) => {
      if (!packet.topic.startsWith('pallas/')) return;
      let json: unknown;
      try {
        json = JSON.parse(packet.payload.toString());
      } catch {
        json = packet.payload.toString();
      }
      this.published.push({ clientId: client ? client.id : null, topic: packet.topic, json, retain: packet.retain });
    });
  }

  /** (Re)opens the MQTT listener; port 0 picks a free one, later calls reuse the same. */
  async startMqtt(port = this.mqttPort): Promise<void> {
    this.net = createNetServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen(port, '127.0.0.1', () => resolve());
    });
    this.mqttPort = (this.net.address() as AddressInfo).port;
  }

  /** Closes the MQTT listener and cuts every connection (a network outage). */
  async stopMqtt(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.net.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  async #startHttp(): Promise<void> {
    this.http = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const send = (status: number, payload: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
        };
        if (req.method === 'POST' && req.url === '/api/v1/enroll/status' && this.onStatus) {
          const request = JSON.parse(body) as { deviceId: string; secret: string };
          this.statusRequests.push(request);
          const answer = this.onStatus(request, this);
          return send(answer.status, answer.body);
        }
        if (req.method !== 'POST' || req.url !== '/api/v1/enroll') return send(404, { error: { code: 'not_found', message: 'no route' } });
        const request = JSON.parse(body) as EnrollRequest;
        this.enrollRequests.push(request);
        this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
        setTimeout(() => {
          this.inFlight--;
          const override = this.onEnroll?.(request, this);
          if (override) return send(override.status, override.body);
          send(200, this.issue(request.deviceId));
        }, this.enrollDelayMs);
      });
    });
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', () => resolve()));
    this.httpUrl = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Issues (or replaces) a credential, as the manager's enrollment does. */
  issue(deviceId: string): EnrollResponse {
    const password = `pw-${randomUUID()}`;
    this.passwords.set(deviceId, password);
    return {
      deviceId,
      mqtt: { url: this.mqttUrl, clientId: deviceId, username: deviceId, password, keepaliveSec: this.keepaliveSec },
      statusIntervalSec: this.statusIntervalSec,
    };
  }

  /** Forgets a device's credential, as the manager's decommission or a revocation does. */
  forget(deviceId: string): void {
    this.passwords.delete(deviceId);
  }

  /** Sends a command to a device, QoS 1 (kept in its persistent session while it is away). */
  command(deviceId: string, channel: string, payload: unknown): Promise<void> {
    const raw = typeof payload === 'string' ? payload : JSON.stringify(payload);
    return new Promise((resolve, reject) =>
      this.aedes.publish(
        { cmd: 'publish', topic: `pallas/v1/d/${deviceId}/${channel}`, payload: Buffer.from(raw), qos: 1, retain: false, dup: false } as never,
        (err?: Error) => (err ? reject(err) : resolve()),
      ),
    );
  }

  messages(topicSuffix: string, deviceId?: string): Published[] {
    return this.published.filter((p) => p.topic.endsWith(`/${topicSuffix}`) && (!deviceId || p.topic.includes(`/${deviceId}/`)));
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections(); // fetch keeps connections alive; close() would wait for them
    await closed;
    if (this.net.listening) await this.stopMqtt();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}

/** Polls `predicate` until it holds, or fails after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
