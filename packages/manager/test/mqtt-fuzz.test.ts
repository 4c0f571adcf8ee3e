/**
 * Issue 6, acceptance 4 (MQTT part), and issue 21, point 1, against a real manager process:
 * 1. raw malformed MQTT over a plain TCP socket (zero-length topic, MQTT 5 where 3.1.1 is
 *    spoken and the reverse, truncated frames, oversized or malformed remaining lengths,
 *    garbage, plus fast-check's random bytes after a valid CONNECT);
 * 2. property-based fuzzing of every upstream payload schema (presence, status, task progress,
 *    task result, events) published by an authenticated device: any JSON, any text (all of
 *    Unicode, control characters), and valid messages with one value changed or removed at any
 *    depth (nested facts, VMs, errors).
 * Every case is checked on its own, before the next: the manager is up and answers, the victim
 * device is still connected, and once a barrier proves the case was handled (a barrier that
 * does not touch the fuzzing device's own records), the stored device and task are valid.
 * The first bad case stops the run, shrunk, with the seed and path that replay it
 * (docs/testing.md, "Fuzzing"). At the end the manager's memory has stayed bounded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { Device, Task, checker } from '@pallas/protocol';
import {
  Api, announceFuzzSeed, anyText, createEnrollmentToken, fuzz, mutatedDeep, startManagerProcess, waitFor, type ManagerProcess,
} from '@pallas/testkit';
import { closeClient, connect, enroll, fakeFacts, fakeVm, statusMessage, type Enrolled } from './support.js';

const FILE = 'packages/manager/test/mqtt-fuzz.test.ts';
const RUNS = Number(process.env.PALLAS_FUZZ_RUNS ?? 250);
const validDevice = checker(Device);
const validTask = checker(Task);

let manager: ManagerProcess;
let admin: Api;
let A: Enrolled;
let B: Enrolled;
let W: Enrolled;
let victim: MqttClient;
let witness: MqttClient;
let victimDrops = 0;
let rssStartKb = 0;

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${manager.pid}/status`, 'utf8'))?.[1] ?? 0);

before(async () => {
  announceFuzzSeed(FILE);
  // No message rate limit here: the fuzzer publishes as fast as it can and every case must
  // reach the manager's validation rather than be dropped at the door. Status is written every
  // 10 ms, so that the per-case barrier costs little.
  manager = await startManagerProcess({ args: ['--device-message-rate', '0', '--mqtt-connect-rate', '0', '--status-flush-ms', '10'] });
  admin = await manager.admin();
  const token = await createEnrollmentToken(admin, { maxUses: 5 });
  A = await enroll(manager.api, token, 'fuzzer');
  B = await enroll(manager.api, token, 'victim');
  W = await enroll(manager.api, token, 'witness');
  victim = await connect(manager.mqttUrl, B.creds);
  victim.on('close', () => victimDrops++);
  witness = await connect(manager.mqttUrl, W.creds);
  rssStartKb = rssKb();
});

after(async () => {
  await closeClient(victim);
  await closeClient(witness);
  await manager?.close();
});

/** The manager process is up and ready, and the victim device was never disconnected. */
async function alive(): Promise<void> {
  assert.equal(manager.child.exitCode, null, `the manager exited:\n${manager.output().slice(-3000)}`);
  assert.equal((await manager.api.get('/readyz')).status, 200, 'the manager answers /readyz');
  assert.equal(victimDrops, 0, 'the victim was never disconnected');
  assert.ok(victim.connected, 'the victim is connected');
}

// --- raw packets -------------------------------------------------------------------------

const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};
const remaining = (n: number) => {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return Buffer.from(out);
};
const packet = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), remaining(body.length), body]);
function connectPacket(opts: { level?: number; name?: string; clientId: string; username?: string; password?: string; v5props?: boolean }): Buffer {
  const flags = (opts.username !== undefined ? 0x80 : 0) | (opts.password !== undefined ? 0x40 : 0) | 0x02;
  const parts = [str(opts.name ?? 'MQTT'), Buffer.from([opts.level ?? 4, flags, 0, 30])];
  if (opts.v5props) parts.push(Buffer.from([0])); // MQTT 5 properties length
  parts.push(str(opts.clientId));
  if (opts.username !== undefined) parts.push(str(opts.username));
  if (opts.password !== undefined) parts.push(str(opts.password));
  return packet(0x10, Buffer.concat(parts));
}
const goodConnect = () => connectPacket({ clientId: A.creds.clientId, username: A.creds.username, password: A.creds.password });
const publish = (t: string, payload: string, extra: Buffer = Buffer.alloc(0)) => packet(0x30, Buffer.concat([str(t), extra, Buffer.from(payload)]));

/** Sends the bytes, then waits for the manager to close the socket or 300 ms, and closes it. */
function send(bytes: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const socket = tcpConnect(manager.mqttPort, '127.0.0.1');
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 300);
    socket.on('error', () => {});
    socket.on('close', done);
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
    });
  });
}

describe('raw malformed MQTT', () => {
  it('never takes the manager down nor disconnects another device', async () => {
    const cases: Array<[string, () => Buffer[]]> = [
      ['garbage', () => [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
      ['zero bytes', () => [Buffer.alloc(64)]],
      ['reserved packet type 0', () => [Buffer.from([0x00, 0x00])]],
      ['reserved packet type 15', () => [Buffer.from([0xf0, 0x00])]],
      ['publish before connect', () => [publish(topic(A.deviceId, 'status'), '{}')]],
      ['MQTT 5 connect (level 5 + properties)', () => [connectPacket({ level: 5, v5props: true, clientId: A.creds.clientId, username: A.creds.username, password: A.creds.password })]],
      ['MQTT 3.1 connect (MQIsdp, level 3)', () => [connectPacket({ level: 3, name: 'MQIsdp', clientId: A.creds.clientId, username: A.creds.username, password: A.creds.password })]],
      ['unknown protocol level 9', () => [connectPacket({ level: 9, clientId: A.creds.clientId, username: A.creds.username, password: A.creds.password })]],
      ['wrong protocol name', () => [connectPacket({ name: 'MQTX', clientId: A.creds.clientId, username: A.creds.username, password: A.creds.password })]],
      ['MQTT 5 connect with B\'s client id', () => [connectPacket({ level: 5, v5props: true, clientId: B.creds.clientId, username: B.creds.username, password: 'wrong' })]],
      ['zero-length topic', () => [goodConnect(), publish('', '{}')]],
      ['MQTT 5 properties in a 3.1.1 publish', () => [goodConnect(), publish(topic(A.deviceId, 'status'), '{}', Buffer.from([0x05, 0x01, 0x01, 0x23, 0x00]))]],
      ['v3.1.1 session speaking MQTT 5 subscribe options', () => [goodConnect(), packet(0x82, Buffer.concat([Buffer.from([0, 1, 0]), str(topic(A.deviceId, 'cmd/#')), Buffer.from([0x2d])]))]],
      ['subscribe with an empty filter', () => [goodConnect(), packet(0x82, Buffer.concat([Buffer.from([0, 1]), str(''), Buffer.from([1])]))]],
      ['subscribe with no filters', () => [goodConnect(), packet(0x82, Buffer.from([0, 1]))]],
      ['wildcard in a publish topic', () => [goodConnect(), publish(`${topic(A.deviceId, 'status')}/#`, '{}')]],
      ['a second CONNECT', () => [goodConnect(), goodConnect()]],
      ['truncated CONNECT', () => [goodConnect().subarray(0, 12)]],
      ['truncated PUBLISH', () => [goodConnect(), publish(topic(A.deviceId, 'status'), JSON.stringify(statusMessage(1, fakeFacts('x')))).subarray(0, 40)]],
      ['topic length beyond the packet', () => [goodConnect(), packet(0x30, Buffer.from([0xff, 0xff, 0x61]))]],
      ['oversized remaining length (256 MiB announced)', () => [goodConnect(), Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(1024)]],
      ['malformed remaining length (5 bytes)', () => [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])]],
      ['password flag without a password', () => [packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 30]), str(A.creds.clientId), str(A.creds.username)]))]],
      ['QoS 3 publish', () => [goodConnect(), packet(0x36, Buffer.concat([str(topic(A.deviceId, 'status')), Buffer.from('{}')]))]],
      ['PUBREL for nothing', () => [goodConnect(), packet(0x62, Buffer.from([0, 9]))]],
      ['DISCONNECT with a body', () => [goodConnect(), packet(0xe0, Buffer.from([1, 2, 3]))]],
    ];
    let ran = 0;
    for (const [name, bytes] of cases) {
      await send(bytes());
      await alive().catch((err: Error) => assert.fail(`after "${name}": ${err.message}`));
      ran++;
    }
    // Random bytes, alone and after a valid CONNECT.
    await fuzz('raw bytes', fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 2048 })), async ([authenticated, bytes]) => {
      await send(authenticated ? [goodConnect(), Buffer.from(bytes)] : [Buffer.from(bytes)]);
      await alive();
      ran++;
    }, { numRuns: 300, file: FILE });
    console.log(`# raw MQTT cases run: ${ran} (${cases.length} hand-written, ${ran - cases.length} random)`);
  });
});

// --- payload fuzzing -----------------------------------------------------------------------

/** Values that break naive handlers: any JSON value, any text, numbers at the edges. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  anyText(200),
  fc.constantFrom(-1, 0, 1e308, -0, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, '', 'null', '1970-01-01', '9999-12-31T23:59:59Z'),
  fc.constant('x'.repeat(70_000)),
);

/** Anything JSON-ish or not: what a broken or hostile device might send. */
function hostile(valid: unknown): fc.Arbitrary<string> {
  return fc.oneof(
    anyText(300),
    fc.json({ maxDepth: 4 }),
    fc.anything({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'undefined'),
    { weight: 4, arbitrary: mutatedDeep(valid, hostileValue).map((v) => JSON.stringify(v)) },
    fc.string({ minLength: 10_000, maxLength: 60_000 }).map((s) => JSON.stringify({ ...(valid as object), message: s, reason: s })),
    fc.constant(JSON.stringify(valid).slice(0, 17)),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  );
}

describe('upstream payload fuzzing', () => {
  it('stores nothing invalid, whatever an authenticated device publishes, checked case by case', async () => {
    const newTask = async (): Promise<string> => {
      const res = await admin.post<{ id: string }>(`/api/v1/devices/${A.deviceId}/vms/vm-1/power`, { action: 'on' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.id;
    };
    const taskId = await newTask();
    const now = new Date().toISOString();
    const samples: Record<string, unknown> = {
      presence: { state: 'online', at: now, agentVersion: '1.0.0' },
      status: statusMessage(5, fakeFacts('fuzzer'), [fakeVm('vm-1'), { ...fakeVm('vm-2'), powerState: 'off' }]),
      'task/progress': { taskId, pct: 50, message: 'half', at: now },
      'task/result': { taskId, outcome: 'failed', error: { code: 'host_error', message: 'no' }, vm: fakeVm('vm-1'), finishedAt: now },
      events: { type: 'note', at: now },
    };
    const fuzzer = await connect(manager.mqttUrl, A.creds);
    let count = 0;
    let barrierSeq = 0;
    /**
     * Proves the case was handled without touching A's device or the fuzzed task: W's status
     * (status and presence go through one write-behind buffer), then a result for a fresh task
     * of A's on A's own connection (progress and results are applied in arrival order, progress
     * first within a batch, so a result behind the case covers both).
     */
    const barrier = async (): Promise<void> => {
      const n = ++barrierSeq;
      await witness.publishAsync(topic(W.deviceId, 'status'), JSON.stringify(statusMessage(n, fakeFacts('witness', { uptimeSec: n }))), { qos: 1 });
      const fence = await newTask();
      await fuzzer.publishAsync(topic(A.deviceId, 'task/result'), JSON.stringify({ taskId: fence, outcome: 'succeeded', finishedAt: new Date().toISOString() }), { qos: 1 });
      await waitFor(`barrier ${n}`, async () => (await admin.get<Device>(`/api/v1/devices/${W.deviceId}`)).body.facts?.uptimeSec === n
        && (await admin.get<Task>(`/api/v1/tasks/${fence}`)).body.state === 'succeeded', { timeoutMs: 10_000, intervalMs: 10 });
    };
    try {
      for (const [channel, valid] of Object.entries(samples)) {
        await fuzz(`payload on ${channel}`, hostile(valid), async (payload) => {
          await fuzzer.publishAsync(topic(A.deviceId, channel), payload, { qos: 1 });
          await alive();
          await barrier();
          const device = await admin.get<Device>(`/api/v1/devices/${A.deviceId}`);
          assert.equal(device.status, 200, JSON.stringify(device.body));
          assert.ok(validDevice.check(device.body), `stored device is valid: ${validDevice.explain(device.body)}`);
          const task = await admin.get<Task>(`/api/v1/tasks/${taskId}`);
          assert.equal(task.status, 200, JSON.stringify(task.body));
          assert.ok(validTask.check(task.body), `stored task is valid: ${validTask.explain(task.body)}`);
          count++;
        }, { numRuns: RUNS, file: FILE });
      }
    } finally {
      await closeClient(fuzzer);
    }
    console.log(`# upstream payload cases run: ${count} over ${Object.keys(samples).length} channels`);

    const list = (await admin.get<{ items: unknown[] }>('/api/v1/devices?limit=500')).body.items;
    for (const d of list) assert.ok(validDevice.check(d), validDevice.explain(d));
    await alive();
    const growthMb = (rssKb() - rssStartKb) / 1024;
    console.log(`# manager RSS: ${Math.round(rssStartKb / 1024)} MiB before the fuzzing, ${Math.round(rssKb() / 1024)} MiB after`);
    assert.ok(growthMb < 200, `RSS grew by ${growthMb.toFixed(0)} MiB`);
  });
});
