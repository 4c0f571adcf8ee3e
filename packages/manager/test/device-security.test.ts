/**
 * Issue 6, acceptance 1 and 2, against a real manager process: a client that is not ours
 * (Debian's mosquitto_sub / mosquitto_pub) holding device A's credential tries everything it
 * should not; device B, a real agent, stays connected throughout. Then revocation (block,
 * delete), enrollment tokens (expired, used up, never valid on the broker), clone detection,
 * approval and credential rotation.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Device } from '@pallas/protocol';
import {
  Api, TOOLS, createEnrollmentToken, missingToolsReason, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { closeClient, connect, enroll, expectError, fakeFacts, rejectedByReason, statusMessage, tryConnect, watchMosquittoSub, withStore, type Enrolled } from './support.js';

const skip = skipUnless(missingToolsReason([TOOLS.mosquittoSub, TOOLS.mosquittoPub]));

let manager: ManagerProcess;
let admin: Api;
let token: string;
let A: Enrolled;
let agentB: Proc;
let bId: string;
const stateB = tempDir('pallas-sec-agent-b-');
const open: MqttClient[] = [];

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

/** Runs a mosquitto client; resolves with its exit code and output (never rejects). */
function mosquitto(tool: 'mosquitto_sub' | 'mosquitto_pub', args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(tool, ['-h', '127.0.0.1', '-p', String(manager.mqttPort), '-V', 'mqttv311', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}
const asA = ['-i', '', '-u', '', '-P', ''];
function credsArgs(clientId: string, username: string, password: string): string[] {
  return ['-i', clientId, '-u', username, '-P', password];
}

async function device(id: string): Promise<Device> {
  const res = await admin.get<Device>(`/api/v1/devices/${id}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Lines where agent B's link went down: there must be none. */
const bDrops = () => agentB.output().split('\n').filter((l) => /mqtt disconnected|credential rejected|connection lost/.test(l));

before(async () => {
  manager = await startManagerProcess({ args: ['--mqtt-connect-rate', '0'] });
  admin = await manager.admin();
  token = await createEnrollmentToken(admin, { name: 'security', maxUses: 20 });
  A = await enroll(manager.api, token, 'device-a');
  agentB = startAgentProcess({ managerUrl: manager.httpUrl, token, stateDir: stateB.path });
  bId = await waitFor('agent B online', async () => {
    const list = await admin.get<{ items: Device[] }>('/api/v1/devices?presence=online');
    return list.body.items.find((d) => d.name !== 'device-a')?.id;
  }, { timeoutMs: 20_000 });
  asA.splice(0, asA.length, ...credsArgs(A.creds.clientId, A.creds.username, A.creds.password));
});

after(async () => {
  await Promise.all(open.map((c) => closeClient(c)));
  await agentB?.stop();
  await manager?.close();
  stateB.cleanup();
});

describe('mosquitto clients holding device A\'s credential', { skip }, () => {
  for (const filter of ['#', '+/#', '$SYS/#', 'pallas/v1/d/+/cmd/#', '__B_CMD__', '__B_STATUS__']) {
    it(`cannot subscribe to ${filter}`, async () => {
      const t = filter.replace('__B_CMD__', topic(bId, 'cmd/#')).replace('__B_STATUS__', topic(bId, 'status'));
      // -d prints the SUBACK; 128 is the failure return code. -W ends it after 3 s.
      const res = await mosquitto('mosquitto_sub', [...asA, '-t', t, '-d', '-W', '3', '-q', '1']);
      assert.match(res.out, /Subscribed \(mid: \d+\): 128|All subscription requests were denied/, res.out);
      assert.doesNotMatch(res.out, /received PUBLISH/, 'no message may arrive');
    });
  }

  it('receives nothing of another device\'s while that device publishes', async () => {
    const W = await enroll(manager.api, token, 'witness');
    const w = await connect(manager.mqttUrl, W.creds);
    open.push(w);
    // Barriers, not sleeps: the SUBACK (-d prints it) proves the subscriptions were decided
    // before W publishes; a command the manager then sends to A's own topic, which A may
    // receive, proves that whatever the broker routed to this client before it has arrived.
    const sub = watchMosquittoSub(manager.mqttPort, [...asA, '-t', '#', '-t', '+/#', '-t', topic(W.deviceId, 'status'), '-t', topic(A.deviceId, 'cmd/#'), '-v', '-d', '-q', '1']);
    try {
      await waitFor('SUBACK', () => /Subscribed \(mid: \d+\): 128, 128, 128, 1/.test(sub.output()), { timeoutMs: 10_000 });
      for (let i = 1; i <= 5; i++) await w.publishAsync(topic(W.deviceId, 'status'), JSON.stringify(statusMessage(i, fakeFacts('witness', { uptimeSec: i }))), { qos: 1 });
      await waitFor('W\'s reports stored', async () => (await device(W.deviceId)).facts?.uptimeSec === 5, { timeoutMs: 5000 });
      assert.equal((await admin.post(`/api/v1/devices/${A.deviceId}/rotate-credential`, {})).status, 200);
      await waitFor('the probe on A\'s command topic', () => sub.output().includes('"rotate-credential"'), { timeoutMs: 10_000 });
    } finally {
      await sub.stop();
    }
    // W's id may show only in the SUBSCRIBE lines this client wrote itself.
    const received = sub.output().split('\n').filter((l) => !/ sending SUBSCRIBE /.test(l));
    assert.deepEqual(received.filter((l) => l.includes(W.deviceId)), [], sub.output());
    assert.ok(received.some((l) => / received PUBLISH .*cmd\/control/.test(l)), 'the probe arrived (positive control)');
  });

  it('cannot publish as B: the manager never sees it', async () => {
    const before = await device(bId);
    const spoof = JSON.stringify(statusMessage(1_000_000, fakeFacts('spoofed-by-a')));
    const res = await mosquitto('mosquitto_pub', [...asA, '-t', topic(bId, 'status'), '-m', spoof, '-q', '1']);
    assert.notEqual(res.code, 0, `the broker must drop the connection: ${res.out}`);
    // A valid report of A's own afterwards is stored, B's record is not touched.
    const own = JSON.stringify(statusMessage(7, fakeFacts('device-a', { uptimeSec: 4242 })));
    assert.equal((await mosquitto('mosquitto_pub', [...asA, '-t', topic(A.deviceId, 'status'), '-m', own, '-q', '1'])).code, 0);
    await waitFor('A\'s own report stored', async () => (await device(A.deviceId)).facts?.uptimeSec === 4242, { timeoutMs: 5000 });
    const afterwards = await device(bId);
    assert.notEqual(afterwards.facts?.hostname, 'spoofed-by-a');
    assert.equal(afterwards.facts?.hostname, before.facts?.hostname);
  });

  it('cannot connect with B\'s client id (with A\'s username, or B\'s username and A\'s password)', async () => {
    for (const args of [credsArgs(bId, A.creds.username, A.creds.password), credsArgs(bId, bId, A.creds.password), credsArgs(bId, '', '')]) {
      const res = await mosquitto('mosquitto_sub', [...args, '-t', topic(bId, 'cmd/#'), '-W', '3']);
      assert.notEqual(res.code, 0, res.out);
      assert.match(res.out, /not authori[sz]ed|bad user ?name or password|Connection Refused|Connection error/i, res.out);
    }
  });

  it('cannot use # or + as client id or username', async () => {
    for (const args of [credsArgs('#', '#', A.creds.password), credsArgs('+', A.creds.username, A.creds.password), credsArgs(A.deviceId, '#', A.creds.password)]) {
      const res = await mosquitto('mosquitto_sub', [...args, '-t', '#', '-W', '3']);
      assert.notEqual(res.code, 0, res.out);
    }
  });

  it('with the enrollment token alone can do nothing on the broker', async () => {
    const id = randomUUID();
    for (const args of [credsArgs(id, id, token), credsArgs(id, '', token), credsArgs(A.deviceId, A.deviceId, token)]) {
      const sub = await mosquitto('mosquitto_sub', [...args, '-t', '#', '-W', '3']);
      assert.notEqual(sub.code, 0, sub.out);
      const pub = await mosquitto('mosquitto_pub', [...args, '-t', topic(id, 'status'), '-m', '{}']);
      assert.notEqual(pub.code, 0, pub.out);
    }
    // …but it still enrolls, over HTTP.
    await enroll(manager.api, token, 'with-token-only');
  });

  it('never disconnected device B', async () => {
    assert.equal((await device(bId)).presence, 'online');
    assert.deepEqual(bDrops(), []);
  });
});

describe('message rate', () => {
  it('drops what a device sends beyond its rate, counts it, and keeps it connected', async () => {
    const R = await enroll(manager.api, token, 'chatty');
    const client = await connect(manager.mqttUrl, R.creds);
    open.push(client);
    let closed = false;
    client.on('close', () => { closed = true; });
    const before = (await rejectedByReason(admin)).rate_limited ?? 0;
    const body = JSON.stringify(statusMessage(1, fakeFacts('chatty')));
    // Default: 50 messages/s with bursts of 500.
    await Promise.all(Array.from({ length: 1000 }, () => client.publishAsync(topic(R.deviceId, 'status'), body, { qos: 1 })));
    const dropped = ((await rejectedByReason(admin)).rate_limited ?? 0) - before;
    console.log(`# 1000 messages at once: ${dropped} dropped by the rate limit`);
    assert.ok(dropped >= 100, `dropped ${dropped}`);
    assert.equal(closed, false);
    assert.ok(client.connected);
  });
});

describe('revocation', () => {
  it('block cuts the device off at once and refuses reconnects until unblocked', async () => {
    const C = await enroll(manager.api, token, 'device-c');
    const client = await connect(manager.mqttUrl, C.creds);
    const closed = new Promise<number>((resolve) => client.once('close', () => resolve(Date.now())));
    const t0 = Date.now();
    const res = await admin.post<Device>(`/api/v1/devices/${C.deviceId}/block`, {});
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'blocked');
    const ms = (await closed) - t0;
    console.log(`# blocked device disconnected after ${ms} ms`);
    // Cut off by the manager, not left to time out: a lost connection is noticed only after
    // 1.5 × the keepalive (30 s here). The speed itself is not a test's business (docs/testing.md).
    assert.ok(ms < 10_000, `disconnected after ${ms} ms`);
    await closeClient(client);
    const again = await tryConnect(manager.mqttUrl, C.creds);
    assert.equal(again.ok, false);
    assert.equal((again as { code?: number }).code, 3, 'blocked devices hear "server unavailable" so that their agent retries until unblocked');
    assert.equal((await admin.post(`/api/v1/devices/${C.deviceId}/unblock`, {})).status, 200);
    const back = await tryConnect(manager.mqttUrl, C.creds);
    assert.equal(back.ok, true);
    if (back.ok) await closeClient(back.client);
    const list = await admin.get<{ items: Device[] }>('/api/v1/devices?status=blocked');
    assert.equal(list.body.items.some((d) => d.id === C.deviceId), false);
    // Both operator actions are in the audit log, with the operator as actor.
    const audit = await admin.get<{ items: Array<{ action: string; actor: { name?: string }; target?: { id: string; name?: string } }> }>(`/api/v1/audit?target=${C.deviceId}`);
    const name = (await admin.get<Device>(`/api/v1/devices/${C.deviceId}`)).body.name;
    for (const action of ['device.block', 'device.unblock']) {
      assert.ok(audit.body.items.some((e) => e.action === action && e.actor.name === 'admin' && e.target?.name === name), `${action} audited with the device's name: ${JSON.stringify(audit.body.items)}`);
    }
  });

  it('delete cuts the device off at once and refuses reconnects', async () => {
    const D = await enroll(manager.api, token, 'device-d');
    const client = await connect(manager.mqttUrl, D.creds);
    const closed = new Promise<number>((resolve) => client.once('close', () => resolve(Date.now())));
    const t0 = Date.now();
    assert.equal((await admin.delete(`/api/v1/devices/${D.deviceId}`)).status, 204);
    const ms = (await closed) - t0;
    console.log(`# deleted device disconnected after ${ms} ms`);
    // Cut off by the manager, not left to time out: a lost connection is noticed only after
    // 1.5 × the keepalive (30 s here). The speed itself is not a test's business (docs/testing.md).
    assert.ok(ms < 10_000, `disconnected after ${ms} ms`);
    await closeClient(client);
    const again = await tryConnect(manager.mqttUrl, D.creds);
    assert.equal(again.ok, false);
    assert.equal((again as { code?: number }).code, 4);
  });
});

describe('enrollment tokens', () => {
  it('a used-up token is refused', async () => {
    const once = await createEnrollmentToken(admin, { name: 'once', maxUses: 1 });
    await enroll(manager.api, once, 'first');
    const res = await manager.api.post('/api/v1/enroll', { token: once, deviceId: randomUUID(), facts: fakeFacts('second') });
    expectError(res, 401, 'enrollment_token_invalid', 'used up');
  });

  it('an expired token is refused (default lifetime 24 h)', async () => {
    const created = await admin.post<{ id: string; token: string; expiresAt: string }>('/api/v1/enrollment-tokens', { name: 'short' });
    const hours = (Date.parse(created.body.expiresAt) - Date.now()) / 3_600_000;
    assert.ok(hours > 23.9 && hours <= 24, `default lifetime ${hours} h`);
    // Move its expiry into the past in the store (the shortest lifetime the API allows is 60 s).
    await withStore(manager.databaseUrl, (db) => db.updateTable('enrollment_tokens')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', created.body.id).execute());
    const res = await manager.api.post('/api/v1/enroll', { token: created.body.token, deviceId: randomUUID(), facts: fakeFacts('late') });
    expectError(res, 401, 'enrollment_token_invalid', 'expired');
  });
});

describe('a cloned credential', () => {
  it('is flagged when it keeps replacing an open connection, and audited', async () => {
    const E = await enroll(manager.api, token, 'device-e');
    const rejected = await rejectedByReason(admin);
    for (let i = 0; i < 4; i++) {
      const c = await connect(manager.mqttUrl, E.creds);
      open.push(c);
    }
    await waitFor('clone flag', async () => (await device(E.deviceId)).flags.includes('credential_clone_suspected'), { timeoutMs: 5000 });
    // The record is written beside the flag, not before it: wait for it as well.
    await waitFor('clone audited', async () => {
      const audit = await admin.get<{ items: Array<{ action: string; target?: { id: string } }> }>('/api/v1/audit?action=device.clone-suspected');
      return audit.body.items.some((e) => e.target?.id === E.deviceId);
    }, { timeoutMs: 5000 });
    assert.ok(((await rejectedByReason(admin)).clone_suspected ?? 0) > (rejected.clone_suspected ?? 0));
    // Rotating the credential clears the flag (the copy the clone holds is about to stop working).
    const rotated = await admin.post<Device>(`/api/v1/devices/${E.deviceId}/rotate-credential`, {});
    assert.deepEqual(rotated.body.flags, []);
  });
});

describe('credential rotation with a real agent', () => {
  it('the agent switches to the new credential; the old one stops working once the new one connected', async () => {
    const credFile = join(stateB.path, 'credential.json');
    const old = (JSON.parse(readFileSync(credFile, 'utf8')) as { mqtt: { password: string } }).mqtt.password;
    assert.equal((await admin.post(`/api/v1/devices/${bId}/rotate-credential`, {})).status, 200);
    const next = await waitFor('agent stored its new credential', () => {
      const p = (JSON.parse(readFileSync(credFile, 'utf8')) as { mqtt: { password: string } }).mqtt.password;
      return p !== old && p;
    }, { timeoutMs: 15_000 });
    await waitFor('B online again', async () => (await device(bId)).presence === 'online', { timeoutMs: 15_000 });
    const withOld = await tryConnect(manager.mqttUrl, { clientId: bId, username: bId, password: old });
    assert.equal(withOld.ok, false, 'the old credential no longer works');
    assert.ok(next.length > 40);
    await waitFor('rotation audited', async () => {
      const audit = await admin.get<{ items: Array<{ action: string; target?: { id: string } }> }>('/api/v1/audit?action=device.credential-rotated');
      return audit.body.items.some((e) => e.target?.id === bId);
    }, { timeoutMs: 5000 });
  });
});

describe('approval', () => {
  let gated: ManagerProcess;
  after(async () => gated?.close());

  it('with --require-approval a new device is pending, cannot connect, and can once approved', async () => {
    gated = await startManagerProcess({ args: ['--require-approval', '--mqtt-connect-rate', '1', '--mqtt-connect-rate-loopback'] });
    const adm = await gated.admin();
    const t = await createEnrollmentToken(adm, { maxUses: 5 });
    const P = await enroll(gated.api, t, 'pending-one');
    assert.equal(P.response.status, 'pending');
    const pending = await adm.get<{ items: Device[] }>('/api/v1/devices?status=pending');
    assert.deepEqual(pending.body.items.map((d) => d.id), [P.deviceId]);
    const refused = await tryConnect(gated.mqttUrl, P.creds);
    assert.equal(refused.ok, false);
    assert.equal((refused as { code?: number }).code, 3);
    const approved = await adm.post<Device>(`/api/v1/devices/${P.deviceId}/approve`, {});
    assert.equal(approved.body.status, 'active');
    const ok = await tryConnect(gated.mqttUrl, P.creds);
    assert.equal(ok.ok, true);
    if (ok.ok) await closeClient(ok.client);
    expectError(await adm.post(`/api/v1/devices/${P.deviceId}/approve`, {}), 409, 'device_state_conflict');
  });

  it('refuses connections from an address beyond its connection rate with CONNACK 3', async () => {
    // --mqtt-connect-rate 1 allows bursts of 10 per address; the approval test used two.
    const codes: Array<number | undefined> = [];
    for (let i = 0; i < 14; i++) {
      const id = randomUUID();
      const res = await tryConnect(gated.mqttUrl, { clientId: id, username: id, password: 'nope' });
      codes.push(res.ok ? 0 : (res as { code?: number }).code);
    }
    assert.ok(codes.includes(4), `wrong credentials answered 4 while under the rate: ${codes.join(',')}`);
    assert.ok(codes.includes(3), `beyond the rate: CONNACK 3: ${codes.join(',')}`);
    const adm = await gated.admin();
    assert.ok(((await rejectedByReason(adm)).connect_rate ?? 0) > 0);
  });
});
