/**
 * The walking skeleton end to end: a real manager process, real agent processes with the
 * sim driver, the real CLI. Everything talks over loopback sockets on ephemeral ports.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createEnrollmentToken, listeningSocketsOf, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';

const KEEPALIVE_SEC = 2;

const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

async function presenceOf(admin: Api, id: string): Promise<string | undefined> {
  const res = await admin.get(`/api/v1/devices/${id}`);
  return res.status === 200 ? res.body.presence : undefined;
}

describe('agents and presence', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  const dirs = tempDir('pallas-agents-');
  const agents: Proc[] = [];
  const start = (stateDir: string, withToken = true) => {
    const p = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, ...(withToken ? { token } : {}) });
    agents.push(p);
    return p;
  };

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', String(KEEPALIVE_SEC), '--status-interval-sec', '5'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 10 });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('enrolls, reports host facts and VMs, and keeps its id across restarts', async (t) => {
    const stateA = join(dirs.path, 'a');
    let agent = start(stateA);
    const id = await waitFor('device.json', () => existsSync(join(stateA, 'device.json')) && deviceIdIn(stateA));
    await waitFor('device online with facts', async () => {
      const res = await admin.get(`/api/v1/devices/${id}`);
      return res.status === 200 && res.body.presence === 'online' && res.body.facts && res.body.vms.length > 0 && res.body;
    }, { timeoutMs: 15_000 });
    const device = (await admin.get(`/api/v1/devices/${id}`)).body;
    assert.equal(device.facts.hypervisor.kind, 'sim');
    assert.ok(device.facts.cpu.cores > 0 && device.facts.memory.totalMB > 0 && device.facts.datastores.length > 0);

    // Killed: the kernel closes its socket, the broker publishes the will at once.
    await agent.kill();
    const killedAt = Date.now();
    await waitFor('offline after kill', async () => (await presenceOf(admin, id)) === 'offline', { timeoutMs: KEEPALIVE_SEC * 1500 + 1000, intervalMs: 50 });
    const offlineAfterMs = Date.now() - killedAt;
    t.diagnostic(`offline ${offlineAfterMs} ms after SIGKILL (keepalive ${KEEPALIVE_SEC} s)`);
    assert.ok(offlineAfterMs <= KEEPALIVE_SEC * 1500, `offline after ${offlineAfterMs} ms`);

    // Restarted on the same state dir: same id, no new device.
    const before = (await admin.get('/api/v1/devices')).body.total;
    agent = start(stateA, false);
    await waitFor('online again', async () => (await presenceOf(admin, id)) === 'online');
    assert.equal(deviceIdIn(stateA), id);
    assert.equal((await admin.get('/api/v1/devices')).body.total, before);

    // A new state dir is a new device.
    const stateB = join(dirs.path, 'b');
    start(stateB);
    const idB = await waitFor('second device id', () => existsSync(join(stateB, 'device.json')) && deviceIdIn(stateB));
    assert.notEqual(idB, id);
    await waitFor('second device online', async () => (await presenceOf(admin, idB)) === 'online');
  });

  it('shows a silent device offline within 1.5 keepalive intervals, then back online', async (t) => {
    const state = join(dirs.path, 'silent');
    const agent = start(state);
    const id = await waitFor('device id', () => existsSync(join(state, 'device.json')) && deviceIdIn(state));
    await waitFor('online', async () => (await presenceOf(admin, id)) === 'online');
    // SIGSTOP freezes the agent with its TCP connection open: no packets, no FIN. Only the
    // broker's keepalive check can notice, as with a cut cable or a dead radio link.
    process.kill(agent.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await waitFor('offline by keepalive', async () => (await presenceOf(admin, id)) === 'offline', { timeoutMs: 10_000, intervalMs: 50 });
      const detectedMs = Date.now() - stoppedAt;
      t.diagnostic(`offline ${detectedMs} ms after the agent froze (keepalive ${KEEPALIVE_SEC} s, limit ${KEEPALIVE_SEC * 1500} ms + flush)`);
      // 1.5 keepalive intervals, plus the status buffer's flush (250 ms) and polling.
      assert.ok(detectedMs <= KEEPALIVE_SEC * 1500 + 600, `offline detected after ${detectedMs} ms`);
      assert.ok(detectedMs >= KEEPALIVE_SEC * 1000, `offline too early (${detectedMs} ms): keepalive not respected`);
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    await waitFor('online after resume', async () => (await presenceOf(admin, id)) === 'online', { timeoutMs: 20_000 });
    assert.equal(deviceIdIn(state), id);
  });

  it('has no listening socket in the agent process', async () => {
    const state = join(dirs.path, 'sockets');
    const agent = start(state);
    const id = await waitFor('device id', () => existsSync(join(state, 'device.json')) && deviceIdIn(state));
    await waitFor('online', async () => (await presenceOf(admin, id)) === 'online');
    assert.deepEqual(listeningSocketsOf(agent.pid), []);
    // The same reader does see the manager's listeners, so an empty answer means something.
    assert.ok(listeningSocketsOf(manager.pid).length >= 2);
  });

  it('decommission stops the agent and its credential', async () => {
    const state = join(dirs.path, 'gone');
    const agent = start(state);
    const id = await waitFor('device id', () => existsSync(join(state, 'device.json')) && deviceIdIn(state));
    await waitFor('online', async () => (await presenceOf(admin, id)) === 'online');
    assert.equal((await admin.delete(`/api/v1/devices/${id}`)).status, 204);
    const code = await Promise.race([agent.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    assert.equal(code, 0, `agent exit: ${String(code)}\n${agent.output()}`);
    assert.equal(existsSync(join(state, 'credential.json')), false);
    assert.ok(existsSync(join(state, 'retired.json')), 'marked retired');
    assert.equal(deviceIdIn(state), id, 'the id is kept for a later re-enrollment');
    assert.equal((await admin.get(`/api/v1/devices/${id}`)).status, 404);

    // Started again with its token, it does not come back by itself.
    const again = start(state);
    const refused = await Promise.race([again.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    assert.equal(refused, 1, `agent exit: ${String(refused)}\n${again.output()}`);
    assert.match(again.output(), new RegExp(`pallas-agent: device ${id} was retired on .+ \\(decommissioned by the manager.*\\); to enroll it again run pallas-agent with --re-enroll --token <new token>`));
    assert.equal((await admin.get(`/api/v1/devices/${id}`)).status, 404, 'not enrolled again');

    // An operator's --re-enroll brings it back under the same id.
    const back = startAgentProcess({ managerUrl: manager.httpUrl, stateDir: state, token, args: ['--re-enroll'] });
    agents.push(back);
    await waitFor('online again', async () => (await presenceOf(admin, id)) === 'online');
    assert.equal(deviceIdIn(state), id);
    assert.equal(existsSync(join(state, 'retired.json')), false);
  });

  it('a device decommissioned while away is refused on return, stops, and does not re-enroll', async () => {
    const state = join(dirs.path, 'away');
    const agent = start(state);
    const id = await waitFor('device id', () => existsSync(join(state, 'device.json')) && deviceIdIn(state));
    await waitFor('online', async () => (await presenceOf(admin, id)) === 'online');
    await agent.kill();
    assert.equal((await admin.delete(`/api/v1/devices/${id}`)).status, 204);
    const again = start(state); // still has its (now refused) credential and the token
    const code = await Promise.race([again.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    assert.equal(code, 1, `agent exit: ${String(code)}\n${again.output()}`);
    assert.ok(again.output().includes(`pallas-agent: device ${id}: the manager refused this device's credential`), again.output());
    assert.ok(again.output().includes('--re-enroll --token <new token>'));
    assert.ok(existsSync(join(state, 'retired.json')), 'marked retired');
    assert.equal((await admin.get(`/api/v1/devices/${id}`)).status, 404, 'not enrolled again');
  });
});
