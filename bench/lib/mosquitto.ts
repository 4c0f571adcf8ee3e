import { connectAsync, type MqttClient } from 'mqtt';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './stats.js';
import { pidOf, rssBytes } from './proc.js';

/**
 * The reference MQTT broker for same-run baselines: the machine's Mosquitto on
 * 127.0.0.1:1883 (a C broker, the usual yardstick). Returns undefined when it is not there.
 */
export const MOSQUITTO_URL = process.env.PALLAS_BENCH_MOSQUITTO_URL ?? 'mqtt://127.0.0.1:1883';

export async function mosquittoAvailable(): Promise<boolean> {
  try {
    const c = await connectAsync(MOSQUITTO_URL, { connectTimeout: 2000, reconnectPeriod: 0 });
    await c.endAsync();
    return true;
  } catch {
    return false;
  }
}

export interface ConnectResult {
  clients: MqttClient[];
  perSecond: number;
  p50: number;
  p99: number;
  rssPerClientBytes?: number;
}

/** Opens `n` persistent-session clients at once (QoS 1 will, keepalive) and times them. */
export async function connectMany(url: string, n: number, idPrefix: string, brokerPid?: number): Promise<ConnectResult> {
  const rssBefore = brokerPid ? rssBytes(brokerPid) : undefined;
  const latencies: number[] = [];
  const start = performance.now();
  const clients = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const t0 = performance.now();
      const c = await connectAsync(url, {
        clientId: `${idPrefix}-${i}`,
        clean: false,
        keepalive: 30,
        reconnectPeriod: 0,
        connectTimeout: 60_000,
        will: { topic: `bench/${idPrefix}/${i}/presence`, payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: false },
      });
      latencies.push(performance.now() - t0);
      return c;
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  await sleep(500);
  const rssAfter = brokerPid ? rssBytes(brokerPid) : undefined;
  return {
    clients,
    perSecond: n / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    ...(rssBefore !== undefined && rssAfter !== undefined ? { rssPerClientBytes: (rssAfter - rssBefore) / n } : {}),
  };
}

export async function closeAll(clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
}

/** Mosquitto's pid, for its memory per connection. */
export const mosquittoPid = (): number | undefined => pidOf('mosquitto');

/**
 * Publishes `payloads` round-robin from `clients` at `rate` messages/s for `seconds`,
 * QoS 1, and returns how many were offered. Ticks every 10 ms.
 */
export async function publishAtRate(
  clients: MqttClient[],
  topicOf: (i: number) => string,
  payloadOf: (i: number) => string,
  rate: number,
  seconds: number,
): Promise<number> {
  const tickMs = 10;
  const perTick = rate / (1000 / tickMs);
  const total = Math.round(rate * seconds);
  let sent = 0;
  let next = 0;
  const start = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / tickMs + 1) * perTick));
    const pending: Promise<unknown>[] = [];
    while (sent < due) {
      const i = next++ % clients.length;
      pending.push(clients[i]!.publishAsync(topicOf(i), payloadOf(i), { qos: 1 }));
      sent++;
    }
    await sleep(tickMs);
    if (pending.length > 5000) await Promise.all(pending);
  }
  return sent;
}

/**
 * The transport floor for a task fan-out: `n` clients each subscribed to their own topic;
 * controllers publish a command to each at once and every client answers on its own reply
 * topic (QoS 1 both ways). Returns each client's round trip in ms from the start of the burst.
 *
 * Mosquitto queues at most 1,000 QoS 1 messages per client (`max_queued_messages`) and drops
 * the rest, so one controller would lose replies past that: the fleet is split into shards of
 * `SHARD` clients, one controller each.
 */
const SHARD = 500;
export async function fanOutRoundTrip(url: string, n: number, idPrefix: string, timeoutMs = 120_000): Promise<number[]> {
  const clients = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const c = await connectAsync(url, { clientId: `${idPrefix}-dev-${i}`, clean: true, reconnectPeriod: 0, connectTimeout: 60_000 });
    await c.subscribeAsync(`bench/${idPrefix}/cmd/${i}`, { qos: 1 });
    const replyTopic = `bench/${idPrefix}/reply/${Math.floor(i / SHARD)}/${i}`;
    c.on('message', (_t, payload) => void c.publishAsync(replyTopic, payload, { qos: 1 }).catch(() => {}));
    return c;
  }));
  const shards = Math.ceil(n / SHARD);
  const controllers = await Promise.all(Array.from({ length: shards }, async (_, s) => {
    const ctl = await connectAsync(url, { clientId: `${idPrefix}-ctl-${s}`, clean: true, reconnectPeriod: 0 });
    await ctl.subscribeAsync(`bench/${idPrefix}/reply/${s}/+`, { qos: 1 });
    return ctl;
  }));
  const rtt: number[] = [];
  let start = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Mosquitto fan-out: ${rtt.length} of ${n} replies after ${timeoutMs} ms`)), timeoutMs);
    for (const ctl of controllers) {
      ctl.on('message', () => {
        rtt.push(performance.now() - start);
        if (rtt.length === n) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
  start = performance.now();
  try {
    await Promise.all(clients.map((_, i) => controllers[Math.floor(i / SHARD)]!.publishAsync(`bench/${idPrefix}/cmd/${i}`, JSON.stringify({ type: 'run', i }), { qos: 1 })));
    await done;
  } finally {
    await closeAll([...clients, ...controllers]);
  }
  return rtt;
}
