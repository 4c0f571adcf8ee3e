/**
 * Agent-update rollouts end to end: a real manager and two real agents under their supervisors
 * (`pallas-agent supervise`, sim driver). A good bundle rolls out wave by wave and each device
 * counts as succeeded only once it reports the new version; a version that crashes on start is
 * rolled back by the device, counted as failed, and the rollout pauses before the next wave.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Device, PageOf, Rollout, RolloutDevice } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, BIN, REPO_ROOT, createEnrollmentToken, startManagerProcess, startNode, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { pallas } from './support/cli.js';

const execFileAsync = promisify(execFile);

describe('agent-update rollouts (sim driver, under the supervisor)', () => {
  let manager: ManagerProcess;
  let admin: Api;
  const supervisors: Proc[] = [];
  const dirs = tempDir('pallas-e2e-rollout-update-');
  const cli = join(dirs.path, 'cli');
  const ids: string[] = [];

  const device = async (id: string): Promise<Device> => (await admin.get<Device>(`/api/v1/devices/${id}`)).body;
  const rollout = async (id: string): Promise<Rollout> => (await admin.get<Rollout>(`/api/v1/rollouts/${id}`)).body;
  const until = (id: string, what: string, test: (r: Rollout) => boolean) =>
    waitFor(what, async () => {
      const r = await rollout(id);
      return test(r) && r;
    }, { timeoutMs: 90_000 });
  async function upload(file: string, version: string): Promise<string> {
    const res = await pallas(cli, ['artifacts', 'upload', file, '--kind', 'agent', '--name', 'pallas-agent', '--version', version, '--json']);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { id: string }).id;
  }

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '2', '--rollout-tick-ms', '200'] });
    admin = await manager.admin();
    assert.equal((await pallas(cli, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD])).code, 0);
    const token = await createEnrollmentToken(admin, { maxUses: 2 });
    for (const name of ['a', 'b']) {
      const stateDir = join(dirs.path, name);
      supervisors.push(startNode(BIN.agent, ['supervise', '--manager', manager.httpUrl, '--token', token, '--state-dir', stateDir, '--driver', 'sim'], { PALLAS_LOG_LEVEL: 'info' }));
      const id = await waitFor(`device ${name}`, () => existsSync(join(stateDir, 'device.json')) && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 30_000 });
      await waitFor(`device ${name} online`, async () => (await admin.get(`/api/v1/devices/${id}`)).status === 200 && (await device(id)).presence === 'online', { timeoutMs: 30_000 });
      await admin.patch(`/api/v1/devices/${id}`, { name: `update-${name}` });
      ids.push(id);
    }
  });
  after(async () => {
    await Promise.all(supervisors.map((s) => s.stop(15_000)));
    await manager?.close();
    dirs.cleanup();
  });

  it('succeeds each device only once it reports the new version', async () => {
    const bundle = join(dirs.path, 'pallas-agent-0.1.1-test.mjs');
    await execFileAsync(process.execPath, [join(REPO_ROOT, 'packages/agent/scripts/bundle.mjs'), '--outfile', bundle], { env: { ...process.env, PALLAS_AGENT_VERSION: '0.1.1-test' } });
    const artifact = await upload(bundle, '0.1.1-test');
    const res = await admin.post<Rollout>('/api/v1/rollouts', { name: 'agent 0.1.1', operation: { kind: 'agent.update', artifactId: artifact, healthySec: 30 }, deviceIds: ids, waves: { sizes: [1, 1] }, verifySec: 60 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const done = await until(res.body.id, 'completed', (r) => r.state === 'completed');
    assert.equal(done.counts.succeeded, 2);
    for (const id of ids) assert.equal((await device(id)).facts?.agentVersion, '0.1.1-test');
  });

  it('counts a version that crashes (and is rolled back) as failed, and pauses before the next wave', async () => {
    const crash = join(dirs.path, 'pallas-agent-0.1.2-crash.mjs');
    // A bundle's first line names it (what the manager checks at upload); the rest crashes.
    writeFileSync(crash, "// pallas-agent 0.1.2-crash\nif (process.argv.includes('--version')) { console.log('pallas-agent 0.1.2-crash'); process.exit(0); }\nprocess.exit(1);\n");
    const artifact = await upload(crash, '0.1.2-crash');
    const res = await admin.post<Rollout>('/api/v1/rollouts', {
      name: 'agent 0.1.2', operation: { kind: 'agent.update', artifactId: artifact }, deviceIds: ids, waves: { sizes: [1, 1] },
      errorThreshold: { count: 1, action: 'pause' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const paused = await until(res.body.id, 'paused', (r) => r.state === 'paused');
    assert.equal(paused.reason, 'error_threshold');
    const entries = (await admin.get<PageOf<RolloutDevice>>(`/api/v1/rollouts/${res.body.id}/devices`)).body.items;
    assert.equal(entries[0]!.state, 'failed');
    assert.equal(entries[0]!.error?.code, 'rolled_back');
    assert.deepEqual([entries[1]!.state, entries[1]!.taskId], ['pending', null]);
    await waitFor('the first device back on 0.1.1-test', async () => (await device(ids[0]!)).facts?.agentVersion === '0.1.1-test', { timeoutMs: 30_000 });
  });
});
