/**
 * Issue #15 points 1–4: what one device's credential can make the embedded broker hold. A
 * real manager process; the attacker is a raw TCP client (hand-made packets: QoS 2 without
 * PUBREL, SUBSCRIBE packets of thousands of filters) and an mqtt.js client, both holding a
 * real device credential. The manager's resident memory (VmRSS of its process) may grow by
 * less than RSS_BOUND_MIB over the whole run; the attacker is cut off, counted and audited;
 * a victim device stays connected and keeps working.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Device } from '@pallas/protocol';
import type { PallasClient } from '@pallas/client';
import { Api, createEnrollmentToken, startManagerProcess, waitFor, type ManagerProcess } from '@pallas/testkit';
import { publishQos2, rawSession, subscribePacket } from './raw-mqtt.js';
import { closeClient, connect, delta, enroll, fakeFacts, rejectedByReason, statusMessage, subackFor, tryConnect, type Enrolled } from './support.js';

/** The growth of the manager's RSS this test allows (docs/security.md). */
const RSS_BOUND_MIB = 20;
const RECONNECTS = 20;

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

let manager: ManagerProcess;
let admin: Api;
let client: PallasClient;
let A: Enrolled; // the attacker
let B: Enrolled; // a victim, connected throughout
let C: Enrolled; // a device that stays offline while commands pile up for it
let bClient: MqttClient;
const bTrouble: string[] = [];
let baseline = 0;
let peak = 0;
let sampler: NodeJS.Timeout;

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  // Logged in before the baseline: a login's scrypt takes 128 MiB for a moment.
  client = await manager.client();
  const token = await createEnrollmentToken(admin, { name: 'memory', maxUses: 10 });
  A = await enroll(manager.api, token, 'attacker');
  B = await enroll(manager.api, token, 'victim');
  C = await enroll(manager.api, token, 'offline');
  bClient = await connect(manager.mqttUrl, B.creds);
  for (const event of ['close', 'offline', 'disconnect', 'end'] as const) bClient.on(event, () => bTrouble.push(event));
  assert.equal(await subackFor(bClient, topic(B.deviceId, 'cmd/#')), 1);
  // Warm up what the test itself exercises (REST calls, connections) so that the baseline
  // includes the heap any use grows to, and what is measured is what the attack adds.
  const D = await enroll(manager.api, token, 'warm-up');
  for (let i = 0; i < 400; i += 25) {
    await Promise.all(Array.from({ length: 25 }, () => client.call('rotateDeviceCredential', { params: { id: D.deviceId } })));
  }
  for (let i = 0; i < 5; i++) await closeClient(await connect(manager.mqttUrl, A.creds));
  await sleep(2000); // let start-up allocations settle
  baseline = rssMiB(manager.pid);
  peak = baseline;
  sampler = setInterval(() => { peak = Math.max(peak, rssMiB(manager.pid)); }, 50);
});

after(async () => {
  clearInterval(sampler);
  await closeClient(bClient);
  await manager?.close();
});

/** The manager's RSS, once what the attack left for the garbage collector had time to go, is within the bound. */
async function expectRssWithinBound(when: string): Promise<void> {
  await sleep(1000);
  const now = rssMiB(manager.pid);
  console.log(`manager RSS ${when}: baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (+${(peak - baseline).toFixed(1)}), now ${now.toFixed(1)} MiB (+${(now - baseline).toFixed(1)})`);
  assert.ok(now - baseline < RSS_BOUND_MIB, `RSS ${when} grew by ${(now - baseline).toFixed(1)} MiB (bound ${RSS_BOUND_MIB})`);
}

async function expectCounted(before: Record<string, number>, reason: string, atLeast: number): Promise<void> {
  await waitFor(`${atLeast} × ${reason}`, async () => {
    const d = delta(before, await rejectedByReason(manager.api));
    if ((d[reason] ?? 0) >= atLeast) return true;
    throw new Error(`counted: ${JSON.stringify(d)}`);
  }, { timeoutMs: 5000, intervalMs: 100 });
}

describe('a device cannot make the embedded broker hold memory (issue #15)', () => {
  it(`QoS 2 publishes without PUBREL over ${RECONNECTS} reconnects: refused, the device cut off each time and audited`, async () => {
    const before = await rejectedByReason(manager.api);
    const payload = Buffer.alloc(100 * 1024, 0x61);
    const kept: number[] = [];
    for (let i = 0; i < RECONNECTS; i++) {
      const packets = Array.from({ length: 100 }, (_, n) => publishQos2(topic(A.deviceId, 'status'), n + 1, payload));
      if (!(await rawSession(manager.mqttPort, A.creds, packets, 300)).closedByBroker) kept.push(i);
    }
    await expectRssWithinBound('after QoS 2 without PUBREL');
    assert.deepEqual(kept, [], 'connections the broker should have cut off for publishing QoS 2');
    await expectCounted(before, 'qos_not_allowed', RECONNECTS);
    const audit = await admin.get<{ items: Array<{ action: string; actor: { id?: string }; outcome: string; detail?: { reason?: string } }> }>(
      `/api/v1/audit?action=device.cut-off&actor=${A.deviceId}`);
    assert.equal(audit.status, 200);
    const entry = audit.body.items.find((e) => e.actor.id === A.deviceId);
    assert.ok(entry, `audit: ${JSON.stringify(audit.body)}`);
    assert.equal(entry.outcome, 'denied');
    assert.equal(entry.detail?.reason, 'qos_not_allowed');
  });

  it(`10,000 subscriptions and filters of 60 KB over ${RECONNECTS} reconnects: only the command filter is kept, the sprayer is cut off`, async () => {
    const before = await rejectedByReason(manager.api);
    const own = topic(A.deviceId, 'cmd/#');
    const kept: number[] = [];
    for (let i = 0; i < RECONNECTS; i++) {
      // Each SUBSCRIBE starts with the filter the protocol allows, so that a broker granting
      // one filter of a packet cannot be fooled into keeping the rest.
      const small = subscribePacket(1, [own, ...Array.from({ length: 500 }, (_, n) => topic(A.deviceId, `cmd/x-${i}-${n}`))]);
      const huge = Array.from({ length: 4 }, (_, k) => subscribePacket(2 + k, [own, ...Array.from({ length: 8 }, (_, n) => topic(A.deviceId, `cmd/${String(n).repeat(1)}${'y'.repeat(60 * 1024)}${i}-${k}`))]));
      if (!(await rawSession(manager.mqttPort, A.creds, [small, ...huge], 300)).closedByBroker) kept.push(i);
    }
    await expectRssWithinBound('after the subscription spray');
    assert.deepEqual(kept, [], 'connections the broker should have cut off for spraying subscriptions');
    await expectCounted(before, 'too_many_subscriptions', RECONNECTS);
    // The protocol's own subscription still works.
    const a = await connect(manager.mqttUrl, A.creds);
    try {
      assert.equal(await subackFor(a, own), 1);
      assert.equal(await subackFor(a, topic(A.deviceId, 'cmd/x-0-0')), 128, 'a topic the protocol does not have is refused');
    } finally {
      await closeClient(a);
    }
  });

  it('retained publishes and a large, retained or QoS 2 will are refused', async () => {
    const before = await rejectedByReason(manager.api);
    const a = await connect(manager.mqttUrl, A.creds);
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.publish(topic(A.deviceId, 'status'), JSON.stringify(statusMessage(1, fakeFacts('attacker'))), { qos: 1, retain: true }, () => {});
    const cut = await Promise.race([closed.then(() => true), sleep(5000).then(() => false)]);
    await closeClient(a);
    assert.ok(cut, 'a retained publish should cut the device off');
    await expectCounted(before, 'retain_not_allowed', 1);
    const wills = [
      { payload: Buffer.alloc(60 * 1024, 0x62), qos: 1 as const, retain: false, reason: 'will_too_large' },
      { payload: Buffer.from('{"state":"offline"}'), qos: 1 as const, retain: true, reason: 'retain_not_allowed' },
      { payload: Buffer.from('{"state":"offline"}'), qos: 2 as const, retain: false, reason: 'qos_not_allowed' },
    ];
    for (const w of wills) {
      const outcome = await tryConnect(manager.mqttUrl, A.creds, { will: { topic: topic(A.deviceId, 'presence'), payload: w.payload, qos: w.qos, retain: w.retain } });
      if (outcome.ok) await closeClient(outcome.client);
      assert.equal(outcome.ok, false, `will ${w.reason} accepted`);
    }
    await expectCounted(before, 'will_too_large', 1);
  });

  it('1,000 commands queued for an offline device: the broker keeps 100 of them, the rest are counted as dropped', async () => {
    const c = await connect(manager.mqttUrl, C.creds);
    assert.equal(await subackFor(c, topic(C.deviceId, 'cmd/#')), 1);
    await c.endAsync(); // offline, session kept
    const before = await rejectedByReason(manager.api);
    for (let i = 0; i < 1000; i += 25) {
      await Promise.all(Array.from({ length: 25 }, () => client.call('rotateDeviceCredential', { params: { id: C.deviceId } })));
    }
    await expectCounted(before, 'queue_full', 900);
    const received: Array<{ type?: string }> = [];
    // The broker sends the queue right after CONNACK: listen before connecting.
    const back = mqtt.connect(manager.mqttUrl, { ...C.creds, protocolVersion: 4, clean: false, reconnectPeriod: 0 });
    back.on('message', (_t, payload) => { received.push(JSON.parse(payload.toString()) as { type?: string }); });
    back.on('error', () => {});
    try {
      await waitFor('the queued commands', () => received.length >= 100, { timeoutMs: 10_000, intervalMs: 100 });
      // The witness: C's last command, sent on the same topic once the queue came back. The
      // session's queue goes out right after CONNACK, ahead of it: a 101st kept would be here.
      assert.equal((await admin.delete(`/api/v1/devices/${C.deviceId}`)).status, 204);
      await waitFor('the decommission command after the queue', () => received.some((m) => m.type === 'decommission'), { timeoutMs: 10_000 });
      assert.deepEqual(received.map((m) => m.type), [...Array.from({ length: 100 }, () => 'rotate-credential'), 'decommission']);
    } finally {
      await closeClient(back);
    }
  });

  it(`keeps the victim connected and served, and the manager's RSS within ${RSS_BOUND_MIB} MiB of where it started`, async () => {
    assert.deepEqual(bTrouble, [], 'the victim was never disconnected');
    await bClient.publishAsync(topic(B.deviceId, 'status'), JSON.stringify(statusMessage(7, fakeFacts('victim', { uptimeSec: 4242 }))), { qos: 1 });
    await waitFor('the victim\'s report stored', async () => (await admin.get<Device>(`/api/v1/devices/${B.deviceId}`)).body.facts?.uptimeSec === 4242, { timeoutMs: 5000 });
    const commands: string[] = [];
    bClient.on('message', (t) => commands.push(t));
    await client.call('rotateDeviceCredential', { params: { id: B.deviceId } });
    await waitFor('a command to the victim', () => commands.includes(topic(B.deviceId, 'cmd/control')), { timeoutMs: 5000 });

    await expectRssWithinBound('at the end');
  });
});
