import { spawn } from 'node:child_process';
/**
 * Helpers for the manager's real-process tests: valid host facts, enrollment over REST,
 * MQTT connections with mqtt.js, error-shape checks and /metrics parsing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { sampleHostFacts, type Api, type ApiResponse } from '@pallas/testkit';
import type { EnrollResponse, HostFacts, StatusMessage, Vm } from '@pallas/protocol';
import { openStore, type Db } from '../src/store/store.js';

/**
 * Runs `fn` on a running manager's own database (`ManagerProcess.databaseUrl`: its SQLite file
 * or its PostgreSQL database), for the few tests that change what the API cannot (an expiry in
 * the past, a tampered signature). Opened beside the manager and closed after.
 */
export async function withStore<T>(databaseUrl: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const store = await openStore(databaseUrl);
  try {
    return await fn(store.write);
  } finally {
    await store.close();
  }
}

/** Host facts for hand-enrolled test devices (one definition, in the testkit). */
export const fakeFacts = sampleHostFacts;

export function fakeVm(id: string, name = id): Vm {
  return { id, name, powerState: 'on', vcpus: 2, memoryMB: 2048, diskGB: 20, guestOs: 'linux' };
}

export function statusMessage(seq: number, facts: HostFacts, vms: Vm[] = []): StatusMessage {
  return { seq, sentAt: new Date().toISOString(), facts, vms };
}

export interface Enrolled {
  deviceId: string;
  hostname: string;
  response: EnrollResponse;
  /** MQTT identity as handed out by the manager. */
  creds: Creds;
}

/** Enrolls a fresh random device id through POST /api/v1/enroll; fails the test if refused. */
export async function enroll(api: Api, token: string, hostname: string, deviceId: string = randomUUID()): Promise<Enrolled> {
  const res = await api.post<EnrollResponse>('/api/v1/enroll', { token, deviceId, facts: fakeFacts(hostname) });
  assert.equal(res.status, 200, `enroll ${hostname}: ${JSON.stringify(res.body)}`);
  const { mqtt: m } = res.body;
  return { deviceId, hostname, response: res.body, creds: { clientId: m.clientId, username: m.username, password: m.password } };
}

export interface Creds {
  clientId: string;
  username: string;
  password: string;
}

export type ConnectOutcome =
  | { ok: true; client: MqttClient }
  | { ok: false; code: number | undefined; message: string };

/**
 * Connects the way an agent does (MQTT 3.1.1, persistent session) but never reconnects on
 * its own, so every case is one connection. Resolves with the CONNACK outcome.
 */
export function tryConnect(url: string, creds: Creds, extra: IClientOptions = {}): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, {
      clientId: creds.clientId,
      username: creds.username,
      password: creds.password,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...extra,
    });
    let settled = false;
    const settle = (outcome: ConnectOutcome) => {
      if (settled) return;
      settled = true;
      if (!outcome.ok) client.end(true);
      resolve(outcome);
    };
    // A listener must stay attached for the client's whole life: mqtt.js emits 'error'.
    client.on('error', (err: Error & { code?: unknown }) => {
      settle({ ok: false, code: typeof err.code === 'number' ? err.code : undefined, message: err.message });
    });
    client.once('connect', () => settle({ ok: true, client }));
    client.once('close', () => settle({ ok: false, code: undefined, message: 'connection closed before CONNACK' }));
  });
}

/** Connects and fails the test unless the broker accepts the credential. */
export async function connect(url: string, creds: Creds, extra: IClientOptions = {}): Promise<MqttClient> {
  const outcome = await tryConnect(url, creds, extra);
  if (!outcome.ok) assert.fail(`connect as ${creds.clientId} refused: ${outcome.message}`);
  return outcome.client;
}

/** SUBACK return code the broker granted for one filter (128 = refused). */
export function subackFor(client: MqttClient, filter: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(filter, { qos: 1 }, (err, _granted, packet) => {
      const code = packet?.granted?.[0];
      if (typeof code === 'number') return resolve(code);
      reject(err ?? new Error(`no SUBACK for ${filter}`));
    });
  });
}

/** Closes a client without waiting for anything from the broker. */
export async function closeClient(client: MqttClient | undefined): Promise<void> {
  if (client && !client.disconnected) await client.endAsync(true);
}

/**
 * Asserts an error response has exactly `{error: {code, message}}`, the given status and
 * code, a message naming every `mentions`, and nothing that looks like a stack trace.
 */
export function expectError(res: ApiResponse, status: number, code: string, ...mentions: string[]): void {
  const what = `${status} ${code}: got ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, what);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: content type`);
  const body = res.body as { error?: { code?: unknown; message?: unknown } };
  assert.ok(body && typeof body === 'object' && !Array.isArray(body), `${what}: body is an object`);
  assert.deepEqual(Object.keys(body), ['error'], `${what}: only an error key`);
  assert.ok(body.error && typeof body.error === 'object', `${what}: error is an object`);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'], `${what}: error has code and message only`);
  assert.equal(body.error.code, code, what);
  assert.equal(typeof body.error.message, 'string', what);
  const message = body.error.message as string;
  assert.ok(message.length > 0, `${what}: empty message`);
  for (const m of mentions) assert.ok(message.includes(m), `${what}: message should mention ${m}`);
  const text = JSON.stringify(res.body);
  assert.ok(!text.includes('    at '), `${what}: stack trace in body`);
  assert.doesNotMatch(text, /\.(ts|js|mjs|cjs):\d*/, `${what}: file path in body`);
  assert.doesNotMatch(text, /node_modules|\/work\/|\/src\//, `${what}: file path in body`);
}

/** One sample of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

export async function scrape(api: Api): Promise<Sample[]> {
  const res = await api.get<string>('/metrics');
  assert.equal(res.status, 200);
  assert.equal(typeof res.body, 'string');
  return parseMetrics(res.body);
}

/** `pallas_mqtt_rejected_total` by reason. */
export async function rejectedByReason(api: Api): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await scrape(api)) {
    if (s.name === 'pallas_mqtt_rejected_total' && s.labels.reason) out[s.labels.reason] = s.value;
  }
  return out;
}

/** What changed between two counter snapshots (only the labels that moved). */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * Debian's mosquitto_sub against a broker on loopback, running in the background: its output so
 * far, and a stop that waits for it to exit.
 */
export function watchMosquittoSub(port: number, args: string[]): { output(): string; stop(): Promise<void> } {
  // stdbuf: on a pipe mosquitto_sub would hold its lines until it exits; each must show as it comes.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
