import assert from 'node:assert/strict';
import { once } from 'node:events';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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

function newAgent(overrides: Partial<AgentOptions> = {}): Agent {
  const agent = new Agent({
    stateDir: join(root, `dev-${++n}`),
    driver: new SimDriver({ seed: n }),
    manager: fake.httpUrl,
    token: TOKEN,
    linkBackoff: { baseMs: 20, capMs: 100 },
    enrollBackoff: { baseMs: 20, capMs: 100 },
    ...overrides,
  });
  agents.push(agent);
  return agent;
}

const exists = (path: string) => access(path).then(() => true, () => false);

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
    assert.equal(fake.enrollRequests.at(-1)?.secret, undefined);

    await waitFor(() => fake.messages('status', id).length > 0, 5000, 'status');
    const status = fake.messages('status', id)[0]!.json;
    assert.ok(checkStatus.check(status), checkStatus.explain(status));
    assert.equal(status.seq, 0);
    assert.equal(status.vms.length, 3);

    await waitFor(() => fake.messages('presence', id).length > 0, 5000, 'presence');
    const presence = fake.messages('presence', id)[0]!;
    assert.ok(checkPresence.check(presence.json));
    assert.equal((presence.json as PresenceMessage).state, 'online');
    assert.equal(presence.retain, true);

    await agent.stop();
    assert.equal(agent.state, 'stopped');
    const last = fake.messages('presence', id).at(-1)!;
    assert.deepEqual([(last.json as PresenceMessage).state, (last.json as PresenceMessage).reason, last.retain], ['offline', 'agent stopped', true]);
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

  it('on decommission deletes the credential, keeps the id, publishes nothing and stops', async () => {
    const agent = newAgent();
    await agent.start();
    await once(agent, 'online');
    const id = agent.deviceId!;
    const dir = join(root, `dev-${n}`);
    assert.ok(await exists(join(dir, 'credential.json')));
    await waitFor(() => fake.messages('status', id).length > 0 && fake.messages('presence', id).length > 0, 5000, 'first messages');
    const published = fake.published.filter((p) => p.clientId === id).length;
    const decommissioned = once(agent, 'decommissioned');
    await fake.command(id, 'cmd/control', { type: 'decommission', reason: 'site closed' });
    assert.deepEqual(await decommissioned, ['site closed']);
    assert.equal(agent.state, 'decommissioned');
    assert.equal(await exists(join(dir, 'credential.json')), false);
    assert.equal(JSON.parse(await readFile(join(dir, 'device.json'), 'utf8')).deviceId, id);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.published.filter((p) => p.clientId === id).length, published, 'nothing published after decommission');
    assert.ok(!fake.messages('presence', id).some((p) => (p.json as PresenceMessage).reason === 'connection lost'), 'clean disconnect: no will');
  });

  it('drops invalid and unknown commands without crashing', async () => {
    const agent = newAgent();
    await agent.start();
    await once(agent, 'online');
    const id = agent.deviceId!;
    await fake.command(id, 'cmd/control', 'not json');
    await fake.command(id, 'cmd/control', { type: 'reboot' });
    await fake.command(id, 'cmd/task', { taskId: 't1' });
    await fake.command(id, 'cmd/whatever', {});
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(agent.state, 'online');
    await agent.stop();
  });

  it('gives up with credential-rejected when the broker refuses and there is no token', async () => {
    const agent = newAgent({ token: undefined });
    const dir = join(root, `dev-${n}`);
    const state = new StateDir(dir);
    const { deviceId } = await state.loadOrCreateIdentity();
    await state.writeCredential({ ...fake.issue(deviceId), mqtt: { ...fake.issue(deviceId).mqtt, password: 'wrong' } });
    const attempts = fake.connectAttempts;
    const rejected = once(agent, 'credential-rejected');
    await agent.start();
    const [err] = await rejected;
    assert.equal(err.code, 'credential_rejected');
    assert.equal(agent.state, 'failed');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.connectAttempts - attempts, 1, 'no reconnect after a refused credential');
  });

  it('re-enrolls with its current secret when the broker refuses and it has a token', async () => {
    const agent = newAgent();
    const state = new StateDir(join(root, `dev-${n}`));
    const { deviceId } = await state.loadOrCreateIdentity();
    const stale = fake.issue(deviceId);
    fake.issue(deviceId); // the manager rotated the secret: the stored one is now refused
    await state.writeCredential(stale);
    await agent.start();
    await once(agent, 'online');
    assert.equal(fake.enrollRequests.at(-1)?.deviceId, deviceId);
    assert.equal(fake.enrollRequests.at(-1)?.secret, stale.mqtt.password);
    assert.equal((await state.readCredential(deviceId))?.mqtt.password, fake.passwords.get(deviceId));
    await agent.stop();
  });
});
