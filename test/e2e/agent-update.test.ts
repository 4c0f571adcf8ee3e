/**
 * Agent self-update and device patches end to end: a real manager, the real CLI, and a real
 * agent under its supervisor (`pallas-agent supervise`, sim driver). The agent artifacts are an
 * esbuild bundle of this agent built with PALLAS_AGENT_VERSION=0.1.1-test, and a file that
 * passes the `--version` check but exits 1 when run as the agent (a version that crashes on
 * start). Downloads go through the agent's real downloader and the manager's signed URLs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry, Device, PageOf, Task } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, BIN, REPO_ROOT, createEnrollmentToken, startManagerProcess, startNode, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
  patchFile,
} from '@pallas/testkit';
import { pallas } from './support/cli.js';

const execFileAsync = promisify(execFile);

describe('agent.update and device.patch end to end (sim driver, under the supervisor)', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let supervisor: Proc | undefined;
  const dirs = tempDir('pallas-e2e-agent-update-');
  const cli = join(dirs.path, 'cli');
  const stateDir = join(dirs.path, 'agent-state');
  let deviceId = '';

  const device = async (): Promise<Device> => (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body;
  const updateJson = (): { state: string; from: string; to: string; reason?: string } =>
    JSON.parse(readFileSync(join(stateDir, 'agent', 'update.json'), 'utf8'));

  async function upload(file: string, kind: string, name: string, version: string): Promise<string> {
    const res = await pallas(cli, ['artifacts', 'upload', file, '--kind', kind, '--name', name, '--version', version, '--json']);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { id: string }).id;
  }

  async function lastTask(kind: string): Promise<Task> {
    const page = (await admin.get<PageOf<Task>>(`/api/v1/tasks?deviceId=${deviceId}&kind=${kind}&limit=1`)).body;
    return page.items[0]!;
  }

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '2'] });
    admin = await manager.admin();
    const login = await pallas(cli, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
    const token = await createEnrollmentToken(admin, { maxUses: 2 });
    supervisor = startNode(BIN.agent, ['supervise', '--manager', manager.httpUrl, '--token', token, '--state-dir', stateDir, '--driver', 'sim'], { PALLAS_LOG_LEVEL: 'info' });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 30_000 });
    await waitFor('device online on the installed version', async () => {
      const d = await device();
      return d?.presence === 'online' && d.facts?.agentVersion === '0.1.0';
    }, { timeoutMs: 30_000 });
  });

  after(async () => {
    const code = await supervisor?.stop(15_000);
    if (code !== 0) console.log(supervisor?.output().slice(-5000));
    await manager?.close();
    dirs.cleanup();
  });

  it('updates to a good bundle with the CLI: the task succeeds and the device reports the new version', async () => {
    const bundle = join(dirs.path, 'pallas-agent-0.1.1-test.mjs');
    await execFileAsync(process.execPath, [join(REPO_ROOT, 'packages/agent/scripts/bundle.mjs'), '--outfile', bundle], { env: { ...process.env, PALLAS_AGENT_VERSION: '0.1.1-test' } });
    const artifact = await upload(bundle, 'agent', 'pallas-agent', '0.1.1-test');

    const res = await pallas(cli, ['devices', 'update-agent', deviceId, '--artifact', artifact, '--healthy-sec', '60', '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}\n${supervisor!.output().slice(-3000)}`);
    const task = await lastTask('agent.update');
    assert.equal(task.state, 'succeeded');
    assert.deepEqual(task.operation, { kind: 'agent.update', artifactId: artifact, healthySec: 60 });
    await waitFor('the device reporting 0.1.1-test', async () => {
      const d = await device();
      return d.presence === 'online' && d.facts?.agentVersion === '0.1.1-test';
    }, { timeoutMs: 30_000 });
    assert.deepEqual([updateJson().state, updateJson().from, updateJson().to], ['committed', '0.1.0', '0.1.1-test']);

    const audit = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?action=device.agent-update')).body.items;
    assert.equal(audit[0]?.target?.id, deviceId);
    assert.equal((audit[0]?.detail as { task?: string } | undefined)?.task, task.id);
  });

  it('rolls back a version that crashes on start: the task fails with the reason and the device is back on the previous version', async () => {
    const crash = join(dirs.path, 'pallas-agent-0.1.2-crash.mjs');
    writeFileSync(crash, "// pallas-agent 0.1.2-crash\nif (process.argv.includes('--version')) { console.log('pallas-agent 0.1.2-crash'); process.exit(0); }\nconsole.error('pallas-agent: crashing on purpose');\nprocess.exit(1);\n");
    const artifact = await upload(crash, 'agent', 'pallas-agent', '0.1.2-crash');

    const res = await pallas(cli, ['devices', 'update-agent', deviceId, '--artifact', artifact, '--wait']);
    assert.notEqual(res.code, 0, 'a rolled-back update fails the command');
    assert.match(`${res.stdout}${res.stderr}`, /0\.1\.2-crash exited with code 1 before it reported healthy/);
    const task = await lastTask('agent.update');
    assert.equal(task.state, 'failed');
    assert.deepEqual(task.error, { code: 'rolled_back', message: '0.1.2-crash exited with code 1 before it reported healthy' });
    await waitFor('the device online on 0.1.1-test again', async () => {
      const d = await device();
      return d.presence === 'online' && d.facts?.agentVersion === '0.1.1-test';
    }, { timeoutMs: 30_000 });
    const record = updateJson();
    assert.deepEqual([record.state, record.from, record.to, record.reason], ['rolled-back', '0.1.1-test', '0.1.2-crash', '0.1.2-crash exited with code 1 before it reported healthy']);
    assert.match(supervisor!.output(), /crashing on purpose/);
  });

  it('patches the sim host with the CLI: the host build shows the patch', async () => {
    const patch = join(dirs.path, 'edge-os-7.1.2.bin');
    writeFileSync(patch, patchFile('7.1.2', randomBytes(256 * 1024)));
    const artifact = await upload(patch, 'patch', 'edge-os', '7.1.2');
    const res = await pallas(cli, ['devices', 'patch', deviceId, '--artifact', artifact, '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.equal((await lastTask('device.patch')).state, 'succeeded');
    await waitFor('the patched build in the host facts', async () => (await device()).facts?.hypervisor.build === 'edge-os 7.1.2', { timeoutMs: 30_000 });
    const shown = await pallas(cli, ['devices', 'show', deviceId]);
    assert.match(shown.stdout, /edge-os 7\.1\.2/);
  });
});
