/**
 * The few MQTT 3.1.1 packets a light simulated device needs. Packets are written with
 * mqtt-packet's generator (stateless, shared); incoming packets are framed here by hand
 * because mqtt-packet's parser is an EventEmitter with a BufferList per connection, more than
 * a device that only reads CONNACK, SUBACK, PUBACK, PINGRESP and PUBLISH needs to hold.
 */
import { generate } from 'mqtt-packet';

export const PINGREQ = generate({ cmd: 'pingreq' });

export interface Incoming {
  type: number;
  /** Packet id of PUBACK/SUBACK, or of a QoS 1 PUBLISH; CONNACK: its return code. */
  id: number;
  topic?: string;
  payload?: Buffer;
  qos?: number;
}

export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;

/**
 * Splits `buf` into whole packets, calls `each` for them and returns the unread tail
 * (undefined when nothing is left), which the caller keeps until more bytes come.
 */
export function readPackets(buf: Buffer, each: (p: Incoming) => void): Buffer | undefined {
  let at = 0;
  while (buf.length - at >= 2) {
    let length = 0;
    let mul = 1;
    let i = at + 1;
    for (;; i++) {
      if (i >= buf.length) return buf.subarray(at);
      const byte = buf[i]!;
      length += (byte & 0x7f) * mul;
      mul *= 128;
      if (!(byte & 0x80)) break;
    }
    const body = i + 1;
    const end = body + length;
    if (end > buf.length) return buf.subarray(at);
    const type = buf[at]! >> 4;
    if (type === PUBLISH) {
      const qos = (buf[at]! >> 1) & 3;
      const topicLength = buf.readUInt16BE(body);
      const topic = buf.toString('utf8', body + 2, body + 2 + topicLength);
      const id = qos ? buf.readUInt16BE(body + 2 + topicLength) : 0;
      each({ type, id, qos, topic, payload: buf.subarray(body + 2 + topicLength + (qos ? 2 : 0), end) });
    } else if (type === CONNACK) {
      each({ type, id: buf[body + 1]! });
    } else if (type === PUBACK || type === SUBACK) {
      each({ type, id: buf.readUInt16BE(body) });
    }
    at = end;
  }
  return at < buf.length ? buf.subarray(at) : undefined;
}

export function connectPacket(o: { clientId: string; username?: string; password?: string; keepalive: number; willTopic: string; willPayload: Buffer }): Buffer {
  return generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: o.keepalive, clientId: o.clientId,
    ...(o.username ? { username: o.username, password: Buffer.from(o.password ?? '') } : {}),
    will: { topic: o.willTopic, payload: o.willPayload, qos: 1, retain: false },
  });
}

export const subscribePacket = (topic: string, messageId: number): Buffer =>
  generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos: 1 }] });

export const publishPacket = (topic: string, payload: string | Buffer, qos: 0 | 1, messageId: number): Buffer =>
  generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos ? { messageId } : {}) });

export const pubackPacket = (messageId: number): Buffer => generate({ cmd: 'puback', messageId });
