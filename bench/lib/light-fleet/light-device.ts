/**
 * One light simulated device: one TCP socket and a few fields, no MQTT client library. It
 * speaks the device protocol as the agent does (docs/protocol.md): CONNECT with a persistent
 * session and the offline will, SUBSCRIBE to its commands, presence `online`, status reports
 * on demand, and every `cmd/task` `run` answered at once with a first progress (QoS 0) and a
 * `succeeded` result (QoS 1). Everything shared (payload templates, timers, counters) lives
 * in the `DeviceHost`, so a device costs a socket and a few hundred bytes of JS.
 */
import { connect, type Socket } from 'node:net';
import { CONNACK, PUBACK, PUBLISH, SUBACK, connectPacket, publishPacket, pubackPacket, readPackets, subscribePacket, type Incoming } from './mqtt-wire.js';

export interface DeviceCredential {
  deviceId: string;
  clientId: string;
  username?: string;
  password?: string;
}

/** What the devices of one process share, and where they report. */
export interface DeviceHost {
  readonly host: string;
  readonly port: number;
  readonly keepaliveSec: number;
  /** The payload of the online presence (the same for every device, `at` aside). */
  presence(): string;
  /** A status payload with this sequence number. */
  status(seq: number): string;
  /** The device is online: CONNACK, SUBACK and the presence's PUBACK are in. */
  online(device: LightDevice): void;
  /** The connection ended (or never came up) without `drop()`. */
  lost(device: LightDevice, why: string): void;
  statusAcked(): void;
  /** A `run` command arrived; `ackedAt` later gets the result's ack. */
  taskRun(taskId: string): void;
  taskAcked(taskIds: string[]): void;
}

const WILL = Buffer.from(JSON.stringify({ state: 'offline', reason: 'connection lost' }));
const PRESENCE_ID = 1;
const SUBSCRIBE_ID = 2;
// Ids above these two are for status and results; they wrap well below MQTT's 65,535.
const FIRST_FREE_ID = 3;

export class LightDevice {
  socket: Socket | undefined;
  #pending: Buffer | undefined;
  #nextId = FIRST_FREE_ID;
  #seq = 0;
  #online = false;
  #dropping = false;

  constructor(readonly cred: DeviceCredential, readonly localAddress: string, readonly hostOf: DeviceHost) {}

  get isOnline(): boolean {
    return this.#online;
  }

  connect(): void {
    const h = this.hostOf;
    this.#dropping = false;
    this.#online = false;
    this.#pending = undefined;
    const socket = connect({ host: h.host, port: h.port, localAddress: this.localAddress, noDelay: true });
    this.socket = socket;
    socket.on('connect', () => socket.write(connectPacket({
      clientId: this.cred.clientId, keepalive: h.keepaliveSec,
      ...(this.cred.username ? { username: this.cred.username, password: this.cred.password ?? '' } : {}),
      willTopic: this.#topic('presence'), willPayload: WILL,
    })));
    socket.on('data', (chunk: Buffer) => {
      const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
      // The tail is copied: keeping a subarray would pin the whole chunk, up to 64 KB per device.
      const tail = readPackets(buf, (p) => this.#onPacket(p));
      this.#pending = tail && Buffer.from(tail);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      const was = this.socket === socket;
      if (was) this.socket = undefined;
      this.#online = false;
      if (was && !this.#dropping) this.hostOf.lost(this, 'connection closed');
    });
  }

  /** The network goes away: the socket is destroyed without DISCONNECT, so the will fires. */
  drop(): void {
    this.#dropping = true;
    this.#online = false;
    this.socket?.destroy();
    this.socket = undefined;
  }

  ping(packet: Buffer): void {
    if (this.#online) this.socket?.write(packet);
  }

  sendStatus(): boolean {
    if (!this.#online) return false;
    this.socket!.write(publishPacket(this.#topic('status'), this.hostOf.status(this.#seq++), 1, this.#id()));
    return true;
  }

  #topic(channel: string): string {
    return `pallas/v1/d/${this.cred.deviceId}/${channel}`;
  }

  #id(): number {
    const id = this.#nextId++;
    if (this.#nextId > 60_000) this.#nextId = FIRST_FREE_ID;
    return id;
  }

  #onPacket(p: Incoming): void {
    const socket = this.socket;
    if (!socket) return;
    if (p.type === CONNACK) {
      if (p.id !== 0) {
        this.hostOf.lost(this, `CONNACK return code ${p.id}`);
        this.drop();
        return;
      }
      socket.write(subscribePacket(`pallas/v1/d/${this.cred.deviceId}/cmd/#`, SUBSCRIBE_ID));
      socket.write(publishPacket(this.#topic('presence'), this.hostOf.presence(), 1, PRESENCE_ID));
    } else if (p.type === PUBACK) {
      if (p.id === PRESENCE_ID) {
        this.#online = true;
        this.hostOf.online(this);
      } else this.hostOf.statusAcked();
    } else if (p.type === SUBACK) {
      // Nothing to do: the presence that follows it is what marks the device online.
    } else if (p.type === PUBLISH) {
      if (p.qos) socket.write(pubackPacket(p.id));
      this.#onCommand(p.topic!, p.payload!);
    }
  }

  #onCommand(topic: string, payload: Buffer): void {
    if (topic.endsWith('/cmd/task')) {
      const cmd = JSON.parse(payload.toString()) as { type: string; taskId: string };
      if (cmd.type !== 'run') return;
      this.hostOf.taskRun(cmd.taskId);
      const at = new Date().toISOString();
      this.socket!.write(publishPacket(this.#topic('task/progress'), JSON.stringify({ taskId: cmd.taskId, pct: 0, at }), 0, 0));
      this.socket!.write(publishPacket(this.#topic('task/result'), JSON.stringify({ taskId: cmd.taskId, outcome: 'succeeded', finishedAt: at }), 1, this.#id()));
    } else if (topic.endsWith('/cmd/task-ack')) {
      this.hostOf.taskAcked((JSON.parse(payload.toString()) as { taskIds: string[] }).taskIds);
    }
  }
}
