/**
 * Hand-made MQTT 3.1.1 packets over a bare TCP socket, for a device that does what no MQTT
 * library lets it do: withhold PUBREL after QoS 2 publishes, or pack thousands of filters
 * into SUBSCRIBE packets without waiting for anything.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import type { Creds } from './support.js';

function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

/** CONNECT with a persistent session (clean = 0), user name and password, keepalive 60 s. */
export function connectPacket(creds: Creds): Buffer {
  const flags = 0x80 | 0x40; // user name, password; clean session off
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, flags, 0, 60])]);
  return packet(0x10, Buffer.concat([variable, str(creds.clientId), str(creds.username), str(creds.password)]));
}

/** PUBLISH with QoS 2 (never followed by PUBREL here). */
export function publishQos2(topic: string, messageId: number, payload: Buffer): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x34, Buffer.concat([str(topic), id, payload]));
}

/** Only the fixed header of a PUBLISH announcing `length` bytes: what a broker sees before it reads (or allocates) the rest. */
export function announcedPublish(length: number): Buffer {
  return Buffer.concat([Buffer.from([0x30]), remainingLength(length)]);
}

/** SUBSCRIBE with many filters, each asking for QoS 1. */
export function subscribePacket(messageId: number, filters: string[]): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x82, Buffer.concat([id, ...filters.map((f) => Buffer.concat([str(f), Buffer.from([1])]))]));
}

/**
 * Connects, waits for CONNACK 0, writes `packets`, and resolves once the broker closed the
 * connection or `holdMs` passed (then it closes it itself, without DISCONNECT, so a will
 * would fire and the session stays). `closedByBroker` tells which.
 */
export function rawSession(port: number, creds: Creds, packets: Buffer[], holdMs = 1500): Promise<{ closedByBroker: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = tcpConnect(port, '127.0.0.1');
    let connacked = false;
    let done = false;
    const finish = (closedByBroker: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ closedByBroker });
    };
    const timer = setTimeout(() => finish(false), holdMs + 5000);
    socket.on('error', () => { /* a reset by the broker ends the session like a close */ });
    socket.on('close', () => {
      if (!connacked) {
        done = true;
        clearTimeout(timer);
        reject(new Error('connection closed before CONNACK'));
      } else finish(true);
    });
    socket.on('data', (chunk) => {
      if (connacked) return;
      if (chunk[0] !== 0x20 || chunk[3] !== 0) return reject(new Error(`CONNACK refused: ${chunk.toString('hex')}`));
      connacked = true;
      for (const p of packets) socket.write(p);
      clearTimeout(timer);
      setTimeout(() => finish(false), holdMs);
    });
    socket.write(connectPacket(creds));
  });
}
