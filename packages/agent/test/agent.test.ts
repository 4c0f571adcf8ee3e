import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { PresenceMessage, StatusMessage, checker } from '@pallas/protocol';
import { Agent, type AgentOptions } from '../src/agent.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { StateDir } from '../src/identity/state-dir.js';
import { FakeManager, waitFor } from './support/fake-manager.js';

const checkStatus = checker(StatusMessage);
const checkPresence = checker(PresenceMessage);
const TOKEN = 'pet_test_token_0123456789';

let fake: FakeManager;
let root: string;
let n = 0;
const agents: Agent[] = [];

before(async () => {
  fake = await FakeManager.start();
  root = await mkdtemp(join(tmpdir(), 'pallas-agent-'));
});
after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

/** The longest wait of the agents' reconnect and enrollment back-off here. */
const BACKOFF_CAP_MS = 100;

function newAgent(overrides: Partial<AgentOptions> = {}): Agent {
  const agent = new Agent({
    stateDir: join(root, `dev-${++n}`),
    driver: new SimDriver({ seed: n }),
    manager: fake.httpUrl,
    token: TOKEN,
    linkBackoff: { baseMs: 20, capMs: BACKOFF_CAP_MS },
    enrollBackoff: { baseMs: 20, capMs: BACKOFF_CAP_MS },
    ...overrides,
  });
  agents.push(agent);
  return agent;
}

const exists = (path: string) => access(path).then(() => true, () => false);
const readJson = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
const RETIRED_MESSAGE = /^device [0-9a-f-]{36} was retired on \d{4}-\d\d-\d\dT[\d:.]+Z \(.+\); to enroll it again run pallas-agent with --re-enroll --token <new token>$/;

/**
 * Starts an agent in a fresh state dir and waits until it is online and the broker has its
 * presence, which the agent sends after subscribing: commands sent from then on reach it.
 */
async function onlineAgent(overrides: Partial<AgentOptions> = {}): Promise<{ agent: Agent; id: string; dir: string }> {
  const agent = newAgent(overrides);
  const online = once(agent, 'online');
  await agent.start();
  await online;
  const id = agent.deviceId!;
  await waitFor(() => fake.messages('presence', id).length > 0, 5000, 'presence');
  return { agent, id, dir: join(root, `dev-${n}`) };
}

/**
 * A barrier for "the agent sent nothing more". The agent runs in this process, so a reconnect
 * or an enrollment it still had scheduled (each within BACKOFF_CAP_MS) fires before a timer set
 * after it for longer, however slow the machine; then a connection attempt and an enrollment
 * request of the test's own, made after that, reach the fake manager after anything the agent
 * started before them. Returns the witnesses' device id (its enrollment request is recorded).
 */
async function witnessAfterAgent(): Promise<string> {
  await new Promise((r) => setTimeout(r, 3 * BACKOFF_CAP_MS));
  const witness = `witness-${randomUUID()}`;
  const refused = await new Promise<boolean>((resolve) => {
    const client = mqtt.connect(fake.mqttUrl, { clientId: witness, username: witness, password: 'not-issued', protocolVersion: 4, reconnectPeriod: 0 });
    client.once('connect', () => { client.end(true); resolve(false); });
    client.once('error', () => { client.end(true); resolve(true); });
  });
  assert.ok(refused, 'the witness connection was counted and refused');
  const res = await fetch(`${fake.httpUrl}/api/v1/enroll`, { method: 'POST', body: JSON.stringify({ token: TOKEN, deviceId: witness }) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  fake.forget(witness);
  return witness;
}

/** Decommissions a fresh online agent through cmd/control; returns its dir and id. */
async function decommissioned(reason = 'site closed'): Promise<{ id: string; dir: string }> {
  const { agent, id, dir } = await onlineAgent();
  const done = once(agent, 'decommissioned');
  fake.forget(id); // the manager deletes the device and its credential first
  await fake.command(id, 'cmd/control', { type: 'decommission', reason });
  await done;
  return { id, dir };
}

describe('agent', () => {
  it('enrolls, goes online, reports status, and says offline on stop', async () => {
    const agent = newAgent();
    const enrolled = once(agent, 'enrolled');
    const online = once(agent, 'online');
    await agent.start();
    await enrolled;
    await online;
    const id = agent.deviceId!;
    assert.equal(fake.enrollRequests.at(-1)?.deviceId, id);
    // No credential yet: the enrollment key proves a retry is this device's (docs/security.md).
    assert.match(fake.enrollRequests.at(-1)?.secret ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await exists(join(root, `dev-${n}`, 'enrollment-key')), false, 'the key goes once the credential is stored');

    await waitFor(() => fake.messages('status', id).length > 0, 5000, 'status');
    const status = fake.messages('status', id)[0]!.json;
    assert.ok(checkStatus.check(status), checkStatus.explain(status));
    assert.equal(status.seq, 0);
    assert.equal(status.vms.length, 3);

    await waitFor(() => fake.messages('presence', id).length > 0, 5000, 'presence');
    const presence = fake.messages('presence', id)[0]!;
    assert.ok(checkPresence.check(presence.json));
    assert.equal((presence.json as PresenceMessage).state, 'online');
    assert.equal(presence.retain, false);

    await agent.stop();
    assert.equal(agent.state, 'stopped');
    const last = fake.messages('presence', id).at(-1)!;
    assert.deepEqual([(last.json as PresenceMessage).state, (last.json as PresenceMessage).reason, last.retain], ['offline', 'agent stopped', false]);
    await agent.stop(); // idempotent
  });

  it('keeps its id across restarts and connects without enrolling again', async () => {
    const first = newAgent();
    await first.start();
    await once(first, 'online');
    await first.stop();
    const requests = fake.enrollRequests.length;
    const second = newAgent({ stateDir: join(root, `dev-${n}`), token: undefined, manager: undefined });
    await second.start();
    await once(second, 'online');
    assert.equal(second.deviceId, first.deviceId);
    assert.equal(fake.enrollRequests.length, requests);
    await second.stop();
  });

  it('sends status every statusIntervalSec while online', async () => {
    const agent = newAgent({ statusIntervalSec: 1 });
    await agent.start();
    await once(agent, 'online');
    await waitFor(() => fake.messages('status', agent.deviceId).length >= 3, 5000, 'three status messages');
    const seqs = fake.messages('status', agent.deviceId).map((m) => (m.json as StatusMessage).seq);
    assert.deepEqual(seqs.slice(0, 3), [0, 1, 2]);
    await agent.stop();
  });

  it('reconnects with backoff after the broker goes away, and reports again', async () => {
    const agent = newAgent();
    await agent.start();
    await once(agent, 'online');
    const before = fake.messages('status', agent.deviceId).length;
    const offline = once(agent, 'offline');
    await fake.stopMqtt();
    await offline;
    assert.equal(agent.state, 'offline');
    await new Promise((r) => setTimeout(r, 300)); // several failed attempts
    await fake.startMqtt();
    await once(agent, 'online');
    await waitFor(() => fake.messages('status', agent.deviceId).length > before, 5000, 'status after reconnect');
    await agent.stop();
  });

  it('resolves start() while the manager is down and enrolls once it is back', async () => {
    let refusals = 3;
    fake.onEnroll = () => (refusals-- > 0 ? { status: 503, body: { error: { code: 'unavailable', message: 'starting' } } } : undefined);
    try {
      const agent = newAgent();
      await agent.start();
      assert.equal(agent.enrolled, false);
      await once(agent, 'online');
      assert.equal(agent.enrolled, true);
      await agent.stop();
    } finally {
      fake.onEnroll = undefined;
    }
  });

  it('rejects start() when the manager refuses the enrollment', async () => {
    fake.onEnroll = () => ({ status: 401, body: { error: { code: 'enrollment_token_invalid', message: 'unknown enrollment token' } } });
    try {
      const agent = newAgent();
      await assert.rejects(agent.start(), /unknown enrollment token/);
      assert.equal(agent.state, 'failed');
    } finally {
      fake.onEnroll = undefined;
    }
  });

  it('rejects start() with nothing to enroll with', async () => {
    const agent = newAgent({ token: undefined });
    await assert.rejects(agent.start(), (err: { code?: string }) => err.code === 'enrollment_not_configured');
  });

  it('on decommission marks the device retired, deletes the credential, keeps the id, publishes nothing and stops', async () => {
    const { agent, id, dir } = await onlineAgent();
    assert.ok(await exists(join(dir, 'credential.json')));
    await waitFor(() => fake.messages('status', id).length > 0, 5000, 'first status');
    const published = fake.published.filter((p) => p.clientId === id).length;
    const attempts = fake.connectAttempts;
    const decommissioned = once(agent, 'decommissioned');
    const before = Date.now();
    await fake.command(id, 'cmd/control', { type: 'decommission', reason: 'site closed' });
    assert.deepEqual(await decommissioned, ['site closed']);
    assert.equal(agent.state, 'decommissioned');
    assert.equal(await exists(join(dir, 'credential.json')), false);
    assert.equal((await readJson(join(dir, 'device.json'))).deviceId, id);
    const retired = await readJson(join(dir, 'retired.json'));
    assert.equal(retired.reason, 'decommissioned by the manager: site closed');
    assert.ok(Date.parse(retired.at as string) >= before - 1000, 'at is the time of the decommission');
    assert.equal((await stat(join(dir, 'retired.json'))).mode & 0o777, 0o600);
    await witnessAfterAgent();
    assert.equal(fake.published.filter((p) => p.clientId === id).length, published, 'nothing published after decommission');
    assert.equal(fake.connectAttempts - attempts, 1, 'no reconnect after decommission: only the witness');
    assert.ok(!fake.messages('presence', id).some((p) => (p.json as PresenceMessage).reason === 'connection lost'), 'clean disconnect: no will');
  });

  it('refuses to start a retired device even with a token, naming its id, date, reason and --re-enroll', async () => {
    const { id, dir } = await decommissioned('site closed');
    const requests = fake.enrollRequests.length;
    const driver = new SimDriver({ seed: 1 });
    let driverClosed = false;
    const close = driver.close.bind(driver);
    driver.close = () => ((driverClosed = true), close());
    const again = newAgent({ stateDir: dir, driver });
    await assert.rejects(again.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'device_retired');
      assert.match(err.message, RETIRED_MESSAGE);
      assert.ok(err.message.startsWith(`device ${id} was retired on `));
      assert.ok(err.message.includes('(decommissioned by the manager: site closed)'));
      return true;
    });
    assert.equal(again.state, 'failed');
    assert.ok(driverClosed, 'the driver is closed');
    assert.equal(fake.enrollRequests.length, requests, 'no enrollment');
    assert.ok(await exists(join(dir, 'retired.json')));
  });

  it('with reEnroll and a token enrolls a retired device again under the same id', async () => {
    const { id, dir } = await decommissioned();
    const requests = fake.enrollRequests.length;
    const agent = newAgent({ stateDir: dir, reEnroll: true });
    const online = once(agent, 'online');
    await agent.start();
    await online;
    assert.equal(agent.deviceId, id);
    assert.equal(fake.enrollRequests.length, requests + 1);
    assert.equal(fake.enrollRequests.at(-1)?.deviceId, id, 'same device id');
    assert.doesNotMatch(fake.enrollRequests.at(-1)?.secret ?? '', /^pw-/, 'the decommission deleted the credential: the enrollment key, not a password');
    assert.equal(await exists(join(dir, 'retired.json')), false);
    assert.equal((await readJson(join(dir, 'credential.json'))).deviceId, id);
    assert.equal((await readJson(join(dir, 'device.json'))).deviceId, id);
    await agent.stop();
    // Back to normal: the next start connects with the new credential, no flag needed.
    const next = newAgent({ stateDir: dir, token: undefined, manager: undefined });
    await next.start();
    await once(next, 'online');
    assert.equal(fake.enrollRequests.length, requests + 1);
    await next.stop();
  });

  it('reEnroll without a token fails as "not enrolled", and a refused re-enrollment leaves the device retired', async () => {
    const { dir } = await decommissioned();
    const requests = fake.enrollRequests.length;
    await assert.rejects(newAgent({ stateDir: dir, reEnroll: true, token: undefined }).start(), (err: { code?: string; message?: string }) =>
      err.code === 'enrollment_not_configured' && /not enrolled; give a manager URL and an enrollment token/.test(err.message ?? ''));
    assert.equal(fake.enrollRequests.length, requests);
    fake.onEnroll = () => ({ status: 401, body: { error: { code: 'enrollment_token_invalid', message: 'enrollment token has expired' } } });
    try {
      await assert.rejects(newAgent({ stateDir: dir, reEnroll: true }).start(), /enrollment token has expired/);
    } finally {
      fake.onEnroll = undefined;
    }
    assert.ok(await exists(join(dir, 'retired.json')), 'still retired');
    await assert.rejects(newAgent({ stateDir: dir }).start(), (err: { code?: string }) => err.code === 'device_retired');
  });

  it('reEnroll on an enrolled device discards its credential and enrolls afresh, same id, proving its current secret', async () => {
    const { agent, id, dir } = await onlineAgent();
    await agent.stop();
    const old = await readJson(join(dir, 'credential.json')) as { mqtt: { password: string } };
    const requests = fake.enrollRequests.length;
    const again = newAgent({ stateDir: dir, reEnroll: true });
    await again.start();
    await once(again, 'online');
    assert.equal(fake.enrollRequests.length, requests + 1);
    assert.equal(fake.enrollRequests.at(-1)?.deviceId, id);
    assert.equal(fake.enrollRequests.at(-1)?.secret, old.mqtt.password);
    const fresh = await readJson(join(dir, 'credential.json')) as { mqtt: { password: string } };
    assert.notEqual(fresh.mqtt.password, old.mqtt.password);
    await again.stop();
  });

  it('drops invalid and unknown commands without crashing', async () => {
    const { agent, id } = await onlineAgent();
    await fake.command(id, 'cmd/control', 'not json');
    await fake.command(id, 'cmd/control', { type: 'reboot' });
    await fake.command(id, 'cmd/task', { taskId: 't1' });
    await fake.command(id, 'cmd/whatever', {});
    // The witness, sent after them: a valid task whose result comes back. The agent handles its
    // commands in order, so by then it has been through all of the others.
    const witness = 'tsk_witness1';
    await fake.command(id, 'cmd/task', { type: 'run', taskId: witness, operation: { kind: 'vm.power', vmId: 'vm-101', action: 'on' }, timeoutMs: 60_000 });
    await waitFor(() => fake.messages('task/result', id).some((m) => (m.json as { taskId?: string }).taskId === witness), 5000, 'the witness task\'s result');
    assert.equal(agent.state, 'online');
    assert.deepEqual(fake.messages('task/result', id).map((m) => (m.json as { taskId?: string }).taskId), [witness], 'nothing ran for the invalid task');
    await agent.stop();
  });

  it('when the broker refuses the credential it marks the device retired and stops, without enrolling again', async () => {
    const { agent, id, dir } = await onlineAgent(); // token and manager configured
    const requests = fake.enrollRequests.length;
    // Decommissioned while the device was away: the manager forgot it, the broker refuses it.
    fake.forget(id);
    const rejected = once(agent, 'credential-rejected');
    await fake.stopMqtt();
    const attempts = fake.connectAttempts;
    await fake.startMqtt();
    const [err] = await rejected;
    assert.equal(err.code, 'credential_rejected');
    assert.equal(
      err.message,
      `device ${id}: the manager refused this device's credential: it was decommissioned or its credential was revoked; to enroll it again run pallas-agent with --re-enroll --token <new token>`,
    );
    assert.equal(agent.state, 'failed');
    assert.deepEqual(await readJson(join(dir, 'retired.json')), {
      reason: "the manager refused this device's credential: it was decommissioned or its credential was revoked",
      at: (await readJson(join(dir, 'retired.json'))).at,
    });
    const witness = await witnessAfterAgent();
    assert.deepEqual(fake.enrollRequests.slice(requests).map((r) => r.deviceId), [witness], 'no enroll request of the agent\'s after the first');
    assert.equal(fake.connectAttempts - attempts, 2, 'no reconnect after a refused credential: the refused one, then the witness');
    // And it stays down: a restart with the token refuses to run.
    await assert.rejects(newAgent({ stateDir: dir }).start(), (e: { code?: string; message?: string }) =>
      e.code === 'device_retired' && RETIRED_MESSAGE.test(e.message ?? ''));
    assert.equal(fake.enrollRequests.length, requests + 1);
  });

  it('asks the manager about a refused credential, and reconnects when it vouches for it', async () => {
    const { agent, id, dir } = await onlineAgent();
    const password = fake.passwords.get(id)!;
    // An external broker that lost the device's account: refused once; the manager (which
    // re-makes the account) first fails, then answers "retry".
    const answers = [{ status: 503, body: { error: { code: 'unavailable', message: 'broker busy' } } }, { status: 200, body: { state: 'retry' } }];
    fake.onStatus = () => answers.shift() ?? { status: 200, body: { state: 'retry' } };
    fake.refuseNext.push(5);
    const offline = once(agent, 'offline');
    await fake.stopMqtt();
    await offline;
    const online = once(agent, 'online');
    await fake.startMqtt();
    await online;
    assert.deepEqual(fake.statusRequests.slice(-2), [{ deviceId: id, secret: password }, { deviceId: id, secret: password }], 'asked again after the 503');
    assert.equal(agent.state, 'online');
    assert.equal(await new StateDir(dir).readRetired(), null, 'not retired');
    fake.onStatus = undefined;
    await agent.stop();
  });

  it('retires the device when the manager answers credential_invalid', async () => {
    const { agent, id, dir } = await onlineAgent();
    fake.onStatus = () => ({ status: 401, body: { error: { code: 'credential_invalid', message: 'this credential is not valid for this device' } } });
    fake.forget(id);
    const rejected = once(agent, 'credential-rejected');
    await fake.stopMqtt();
    await fake.startMqtt();
    const [err] = await rejected;
    assert.equal(err.code, 'credential_rejected');
    assert.ok(await new StateDir(dir).readRetired());
    assert.equal(fake.statusRequests.at(-1)?.deviceId, id);
    fake.onStatus = undefined;
  });

  it('a refused credential stops the agent at the first connect too, token or not', async () => {
    const agent = newAgent({ token: undefined });
    const dir = join(root, `dev-${n}`);
    const state = new StateDir(dir);
    const { deviceId } = await state.loadOrCreateIdentity();
    await state.writeCredential({ ...fake.issue(deviceId), mqtt: { ...fake.issue(deviceId).mqtt, password: 'wrong' } });
    const requests = fake.enrollRequests.length;
    const attempts = fake.connectAttempts;
    const rejected = once(agent, 'credential-rejected');
    await agent.start();
    const [err] = await rejected;
    assert.equal(err.code, 'credential_rejected');
    assert.equal(agent.state, 'failed');
    assert.ok(await state.readRetired());
    assert.ok(await state.readCredential(deviceId), 'the refused credential is kept');
    const witness = await witnessAfterAgent();
    assert.equal(fake.connectAttempts - attempts, 2, 'no reconnect after a refused credential: the refused one, then the witness');
    assert.deepEqual(fake.enrollRequests.slice(requests).map((r) => r.deviceId), [witness], 'no enroll request of the agent\'s');
  });

  it('keeps reconnecting while the broker answers "server unavailable" (CONNACK 3)', async () => {
    const { agent, id } = await onlineAgent();
    const offline = once(agent, 'offline');
    await fake.stopMqtt();
    await offline;
    fake.refuseNext.push(3, 3);
    await fake.startMqtt();
    await once(agent, 'online');
    assert.equal(agent.state, 'online');
    assert.ok(fake.passwords.has(id));
    await agent.stop();
  });
});
