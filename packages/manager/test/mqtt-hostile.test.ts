/**
 * A hostile or broken device against a real manager process. Every bad thing it does on
 * MQTT is refused, counted in `pallas_mqtt_rejected_total{reason}`, logged, and leaves the
 * store as it was; the manager keeps serving everyone else.
 *
 * Device A is the offender, device B its would-be victim (connected the whole time), and
 * device W a witness whose own valid status reports serve as a flush barrier: once W's
 * report is visible over REST, anything A managed to slip into the write-behind status
 * buffer before it would be visible too.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { checker, StatusMessage, type Device } from '@pallas/protocol';
import { Api, createEnrollmentToken, startManagerProcess, waitFor, type ManagerProcess } from '@pallas/testkit';
import {
  closeClient, connect, delta, enroll, fakeFacts, fakeVm, rejectedByReason, scrape, statusMessage, subackFor, tryConnect,
  type Creds, type Enrolled,
} from './support.js';

const validStatus = checker(StatusMessage);

let manager: ManagerProcess;
let admin: Api;
let token: string;
let A: Enrolled;
let B: Enrolled;
let W: Enrolled;
let bClient: MqttClient;
let wClient: MqttClient;
/** Everything B's client went through that it should not have. */
const bTrouble: string[] = [];
const open: MqttClient[] = [];

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  token = await createEnrollmentToken(admin, { name: 'hostile', maxUses: 10 });
  A = await enroll(manager.api, token, 'device-a');
  B = await enroll(manager.api, token, 'device-b');
  W = await enroll(manager.api, token, 'witness');

  bClient = await connect(manager.mqttUrl, B.creds);
  for (const event of ['close', 'offline', 'disconnect', 'end'] as const) bClient.on(event, () => bTrouble.push(event));
  bClient.on('error', (err) => bTrouble.push(`error: ${err.message}`));
  assert.equal(await subackFor(bClient, topic(B.deviceId, 'cmd/#')), 1);
  wClient = await connect(manager.mqttUrl, W.creds);
});

after(async () => {
  await Promise.all([...open, wClient, bClient].map((c) => closeClient(c)));
  await manager?.close();
});

/** A fresh connection as A, closed after the test whatever happens. */
async function asA(creds: Creds = A.creds): Promise<MqttClient> {
  const client = await connect(manager.mqttUrl, creds);
  open.push(client);
  return client;
}

/** Publishes and does not wait: the broker may refuse it by closing the connection. */
function fling(client: MqttClient, t: string, payload: string | Buffer): void {
  client.publish(t, payload, { qos: 1 }, () => {});
}

let barrierSeq = 0;
/** W reports; returns once that report is stored (every earlier buffered update is too). */
async function barrier(): Promise<void> {
  const n = ++barrierSeq;
  await wClient.publishAsync(topic(W.deviceId, 'status'), JSON.stringify(statusMessage(n, fakeFacts('witness', { uptimeSec: n }))), { qos: 1 });
  await waitFor(`witness report ${n} stored`, async () => {
    const res = await admin.get<Device>(`/api/v1/devices/${W.deviceId}`);
    return res.body.facts?.uptimeSec === n;
  }, { timeoutMs: 5000, intervalMs: 50 });
}

async function records(): Promise<{ a: Device; b: Device }> {
  const [a, b] = await Promise.all([A, B].map(async (d) => {
    const res = await admin.get<Device>(`/api/v1/devices/${d.deviceId}`);
    assert.equal(res.status, 200);
    return res.body;
  }));
  return { a: a!, b: b! };
}

/** Manager log lines (pino JSON) written since `from`. */
function logLines(from: number): Array<Record<string, unknown>> {
  return manager.output().slice(from).split('\n').flatMap((line) => {
    try {
      const parsed: unknown = JSON.parse(line);
      return parsed && typeof parsed === 'object' ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Runs `action` and checks that exactly `expected` rejections (by reason) were counted,
 * that each was logged as rejected/refused, and that A's and B's records did not change.
 */
async function expectRejected(expected: Record<string, number>, action: () => Promise<void>): Promise<void> {
  const before = await rejectedByReason(manager.api);
  const recordsBefore = await records();
  const logFrom = manager.output().length;

  await action();

  await waitFor(`rejections ${JSON.stringify(expected)}`, async () => {
    const d = delta(before, await rejectedByReason(manager.api));
    if (Object.entries(expected).every(([reason, n]) => (d[reason] ?? 0) >= n)) return true;
    throw new Error(`counted so far: ${JSON.stringify(d)}`);
  }, { timeoutMs: 5000, intervalMs: 50 });
  await barrier();
  assert.deepEqual(delta(before, await rejectedByReason(manager.api)), expected, 'pallas_mqtt_rejected_total moved by exactly this');

  await waitFor('rejections logged', () => Object.entries(expected).every(([reason, n]) =>
    logLines(logFrom).filter((l) => l.reason === reason && /rejected|refused/.test(String(l.msg))).length >= n));

  assert.deepEqual(await records(), recordsBefore, 'nothing was stored for A or B');
}

describe('a hostile device', () => {
  it('sends payloads that are not JSON on its own status topic', async () => {
    await expectRejected({ malformed: 3 }, async () => {
      const a = await asA();
      await a.publishAsync(topic(A.deviceId, 'status'), 'this is not JSON', { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'status'), '{"seq": 1, "sentAt": ', { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'status'), Buffer.alloc(0), { qos: 1 });
      await closeClient(a);
    });
  });

  it('sends JSON that is not a StatusMessage (or PresenceMessage)', async () => {
    const good = statusMessage(1, fakeFacts('device-a-evil'), [fakeVm('vm-1')]);
    assert.ok(validStatus.check(good), 'the base message is valid');
    const bad: unknown[] = [
      { hello: 'world' },
      [],
      null,
      42,
      'a string',
      { ...good, seq: -1 },
      { ...good, sentAt: 'yesterday' },
      { ...good, extra: true },
      { ...good, facts: { ...good.facts, cpu: { ...good.facts.cpu, cores: 'four' } } },
      { ...good, facts: { ...good.facts, hostname: 'h'.repeat(256) } },
      { ...good, vms: [{ ...fakeVm('vm-1'), powerState: 'exploded' }] },
      { ...good, vms: 'none' },
    ];
    for (const b of bad) assert.ok(!validStatus.check(b), `${JSON.stringify(b).slice(0, 80)} is invalid`);
    await expectRejected({ malformed: bad.length + 2 }, async () => {
      const a = await asA();
      for (const b of bad) await a.publishAsync(topic(A.deviceId, 'status'), JSON.stringify(b), { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'presence'), JSON.stringify({ state: 'sideways' }), { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'presence'), JSON.stringify({ state: 'online', at: 'now' }), { qos: 1 });
      await closeClient(a);
    });
  });

  it('sends bytes that are not UTF-8', async () => {
    // A valid status message whose host name carries invalid UTF-8: a lenient decoder
    // would store U+FFFD; the manager must refuse the whole message.
    const text = JSON.stringify(statusMessage(2, fakeFacts('HOST@@NAME')));
    const at = text.indexOf('@@');
    const poisoned = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(at + 2))]);
    assert.ok(validStatus.check(JSON.parse(poisoned.toString('utf8'))), 'only the encoding is wrong');
    await expectRejected({ malformed: 3 }, async () => {
      const a = await asA();
      await a.publishAsync(topic(A.deviceId, 'status'), poisoned, { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'status'), Buffer.from([0xc3, 0x28, 0xa0, 0xa1]), { qos: 1 });
      await a.publishAsync(topic(A.deviceId, 'presence'), Buffer.concat([Buffer.from('{"state":"online","reason":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), { qos: 1 });
      await closeClient(a);
    });
  });

  it('publishes on topics under its prefix that do not exist', async () => {
    const payload = JSON.stringify(statusMessage(3, fakeFacts('device-a-evil')));
    const topics = [topic(A.deviceId, 'bogus'), topic(A.deviceId, 'status/extra'), topic(A.deviceId, 'cmd/control'), `pallas/v1/d/${A.deviceId}/`];
    await expectRejected({ unknown_topic: topics.length }, async () => {
      // The broker closes the connection after a refused publish (MQTT 3.1.1 has no negative
      // PUBACK), so each attempt gets a fresh connection.
      for (const t of topics) {
        const a = await asA();
        fling(a, t, payload);
        await new Promise<void>((resolve) => a.once('close', () => resolve()));
      }
    });
  });

  it('publishes a message larger than 256 KiB', async () => {
    const vms = Array.from({ length: 1500 }, (_, i) => fakeVm(`vm-${i}`, `vm-${i}-${'n'.repeat(120)}`));
    const huge = statusMessage(4, fakeFacts('device-a-evil'), vms);
    assert.ok(validStatus.check(huge), 'valid but for its size');
    const payload = JSON.stringify(huge);
    assert.ok(Buffer.byteLength(payload) > 256 * 1024, `payload is ${Buffer.byteLength(payload)} bytes`);
    await expectRejected({ oversized: 1 }, async () => {
      const a = await asA();
      fling(a, topic(A.deviceId, 'status'), payload);
      await new Promise<void>((resolve) => a.once('close', () => resolve()));
    });
  });

  it("publishes on another device's topics, or outside the device tree", async () => {
    const status = JSON.stringify(statusMessage(5, fakeFacts('pwned-by-a'), [fakeVm('evil-vm')]));
    const attempts: Array<[string, string]> = [
      [topic(B.deviceId, 'status'), status],
      [topic(B.deviceId, 'presence'), JSON.stringify({ state: 'online', at: new Date().toISOString() })],
      [topic(B.deviceId, 'cmd/control'), JSON.stringify({ type: 'decommission' })],
      ['pallas/v1/other', status],
      ['$SYS/broker/hack', status],
    ];
    const commandsToB: string[] = [];
    bClient.on('message', (t) => commandsToB.push(t));
    await expectRejected({ foreign_topic: attempts.length }, async () => {
      for (const [t, payload] of attempts) {
        const a = await asA();
        fling(a, t, payload);
        await new Promise<void>((resolve) => a.once('close', () => resolve()));
      }
    });
    assert.deepEqual(commandsToB, [], 'B received nothing A sent');
    const b = (await admin.get<Device>(`/api/v1/devices/${B.deviceId}`)).body;
    assert.equal(b.facts?.hostname, 'device-b');
    assert.equal(b.presence, 'offline');
    assert.deepEqual(b.vms, []);
  });

  it('registers a last will on another device\'s presence topic', async () => {
    await expectRejected({ foreign_topic: 1 }, async () => {
      const res = await tryConnect(manager.mqttUrl, A.creds, {
        will: { topic: topic(B.deviceId, 'presence'), payload: Buffer.from(JSON.stringify({ state: 'offline' })), qos: 1, retain: true },
      });
      assert.equal(res.ok, false, 'the connection is refused');
    });
  });

  it('subscribes to what is not its own', async () => {
    const filters = ['#', 'pallas/v1/d/+/status', topic(B.deviceId, 'cmd/#'), topic(B.deviceId, 'cmd/control'), 'pallas/v1/d/+/cmd/#', `pallas/v1/d/${A.deviceId}/+`, '$SYS/#'];
    const a = await asA();
    const received: string[] = [];
    a.on('message', (t) => received.push(t));
    await expectRejected({ subscribe_denied: filters.length }, async () => {
      for (const f of filters) assert.equal(await subackFor(a, f), 128, `SUBACK for ${f}`);
    });
    // The connection stays up and its own command topics are still allowed.
    assert.equal(a.connected, true);
    assert.equal(await subackFor(a, topic(A.deviceId, 'cmd/#')), 1);
    await barrier(); // W published a status after the denied '#': A must not have seen it.
    assert.deepEqual(received, []);
    await closeClient(a);
  });

  it("connects as another device, or without a credential of its own", async () => {
    const attempts: Creds[] = [
      { clientId: B.deviceId, username: A.deviceId, password: A.creds.password },
      { clientId: B.deviceId, username: B.deviceId, password: A.creds.password },
      { clientId: A.deviceId, username: A.deviceId, password: `${A.creds.password}x` },
      { clientId: randomUUID(), username: A.deviceId, password: A.creds.password },
    ];
    // A username that is not the client id is refused before any credential check.
    await expectRejected({ client_id_mismatch: 2, auth_failed: 2 }, async () => {
      for (const creds of attempts) {
        const res = await tryConnect(manager.mqttUrl, creds);
        assert.equal(res.ok, false, `${JSON.stringify(creds)} is refused`);
        if (!res.ok) assert.equal(res.code, 4, res.message);
      }
    });
  });

  it('uses the enrollment token as its MQTT password', async () => {
    const fresh = randomUUID();
    const attempts: Creds[] = [
      { clientId: A.deviceId, username: A.deviceId, password: token },
      { clientId: fresh, username: fresh, password: token },
      { clientId: B.deviceId, username: B.deviceId, password: token },
    ];
    await expectRejected({ auth_failed: attempts.length }, async () => {
      for (const creds of attempts) {
        const res = await tryConnect(manager.mqttUrl, creds);
        assert.equal(res.ok, false, `${JSON.stringify(creds)} is refused`);
        if (!res.ok) assert.equal(res.code, 4, res.message);
      }
    });
  });

  it('speaks something that is not MQTT', async () => {
    await expectRejected({ malformed: 1 }, async () => {
      const socket = tcpConnect(manager.mqttPort, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    });
  });
});

describe('after all of it', () => {
  it('leaves the victim connected, the manager serving, and the offender able to report properly', async () => {
    assert.deepEqual(bTrouble, [], "B's connection was never disturbed");
    assert.equal(bClient.connected, true);
    assert.equal(await subackFor(bClient, topic(B.deviceId, 'cmd/control')), 1, 'B still talks to the broker');
    assert.equal(manager.child.exitCode, null, 'the manager is running');
    assert.equal((await manager.api.get('/readyz')).status, 200);

    const counted = (await scrape(manager.api)).find((s) => s.name === 'pallas_mqtt_messages_received_total' && s.labels.channel === 'status')?.value ?? 0;
    const a = await asA();
    const report = statusMessage(7, fakeFacts('device-a', { uptimeSec: 4242 }), [fakeVm('vm-1', 'router'), fakeVm('vm-2', 'firewall')]);
    await a.publishAsync(topic(A.deviceId, 'status'), JSON.stringify(report), { qos: 1 });
    const stored = await waitFor('A\'s status stored', async () => {
      const d = (await admin.get<Device>(`/api/v1/devices/${A.deviceId}`)).body;
      return d.facts?.uptimeSec === 4242 && d;
    }, { timeoutMs: 5000, intervalMs: 50 });
    assert.deepEqual(stored.facts, report.facts);
    assert.deepEqual(stored.vms, report.vms);
    assert.equal(stored.presence, 'online');
    assert.ok(stored.lastSeenAt && Date.parse(stored.lastSeenAt) > Date.now() - 60_000);
    const now = (await scrape(manager.api)).find((s) => s.name === 'pallas_mqtt_messages_received_total' && s.labels.channel === 'status')?.value ?? 0;
    assert.ok(now > counted, 'the valid report was counted as received');
    await closeClient(a);
  });
});
