import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { PresenceMessage, StatusMessage, TaskResult } from '@pallas/protocol';
import { BIN, REPO_ROOT, startNode, tempDir, type Proc } from '@pallas/testkit';
import { TaskJournal } from '../src/tasks/journal.js';
import { UpdateFiles } from '../src/update/update-files.js';
import { FakeManager, waitFor } from './support/fake-manager.js';

// The real `pallas-agent supervise` running real agents: the installed one and a bundle made
// by scripts/bundle.mjs. The install step of an update (fetch, check, copy, update.json, exit
// 10) is what the old agent leaves on disk; here the test leaves it (journaled task start,
// bundle under versions/, update.json `trying`), then starts the supervisor, as after the
// old agent's exit. The whole flow from a task sent by the real manager is test/e2e/agent-update.test.ts.

const execFileAsync = promisify(execFile);
const dirs = tempDir('pallas-update-proc-');
let fake: FakeManager;
const procs: Proc[] = [];
let goodBundle = '';
let crashBundle = '';

before(async () => {
  fake = await FakeManager.start();
  goodBundle = join(dirs.path, 'good', 'pallas-agent.mjs');
  await execFileAsync(process.execPath, [join(REPO_ROOT, 'packages/agent/scripts/bundle.mjs'), '--outfile', goodBundle], {
    env: { ...process.env, PALLAS_AGENT_VERSION: '0.1.1-test' },
  });
  // Passes the --version check, then exits 1 when run as the agent: a version that crashes on start.
  crashBundle = join(dirs.path, 'crash', 'pallas-agent.mjs');
  await mkdir(dirname(crashBundle), { recursive: true });
  await writeFile(crashBundle, "if (process.argv.includes('--version')) { console.log('pallas-agent 0.1.2-crash'); process.exit(0); }\nconsole.error('pallas-agent: boom');\nprocess.exit(1);\n");
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await fake.close();
  dirs.cleanup();
});

/** waitFor that shows the supervisor's output (its agents' logs) when it times out. */
async function waitOn(sup: Proc, predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  try {
    await waitFor(predicate, timeoutMs, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- supervisor output ---\n${sup.output().slice(-6000)}`);
  }
}

function supervise(stateDir: string): Proc {
  const p = startNode(BIN.agent, ['supervise', '--manager', fake.httpUrl, '--token', 'pet_test_token_0123456789', '--state-dir', stateDir, '--driver', 'sim'], { PALLAS_LOG_LEVEL: 'info' });
  procs.push(p);
  return p;
}

const presences = (id: string): PresenceMessage[] => fake.messages('presence', id).map((m) => m.json as PresenceMessage);
const results = (id: string, taskId: string): TaskResult[] => fake.messages('task/result', id).map((m) => m.json as TaskResult).filter((r) => r.taskId === taskId);

/** What the old agent leaves behind when it has installed `to` and exits to restart into it. */
async function leaveInstalledUpdate(stateDir: string, o: { taskId: string; from: string; fromPath: string; to: string; bundle: string; healthySec: number }): Promise<void> {
  const journal = await TaskJournal.open({ dir: stateDir, logger: pino({ level: 'silent' }) });
  await journal.recordStart(o.taskId, { kind: 'agent.update', artifactId: 'art_0123456789', healthySec: o.healthySec }, Date.now() + 600_000);
  await journal.close();
  const files = new UpdateFiles(stateDir);
  const toPath = files.bundlePath(o.to);
  await mkdir(dirname(toPath), { recursive: true });
  await copyFile(o.bundle, toPath);
  const now = Date.now();
  await files.writeUpdate({
    taskId: o.taskId, from: o.from, fromPath: o.fromPath, to: o.to, toPath, healthySec: o.healthySec,
    deadline: new Date(now + o.healthySec * 1000).toISOString(), state: 'trying', at: new Date(now).toISOString(),
  });
}

describe('pallas-agent supervise with real agent versions', () => {
  it('a bundle reports its baked-in version, commits once healthy and finishes the task; a crashing one is rolled back and the task fails with the reason', async () => {
    const stateDir = join(dirs.path, 'state');
    const files = new UpdateFiles(stateDir);
    let sup = supervise(stateDir);
    await waitOn(sup, () => fake.enrollRequests.length === 1, 20_000, 'enrollment');
    const id = fake.enrollRequests[0]!.deviceId;
    await waitOn(sup, () => presences(id).some((p) => p.state === 'online' && p.agentVersion === '0.1.0'), 20_000, 'the installed agent online');
    assert.equal(await sup.stop(15_000), 0, sup.output());

    // 1. A good version: online as 0.1.1-test, committed, the task succeeded.
    await leaveInstalledUpdate(stateDir, { taskId: 'tsk_update1', from: '0.1.0', fromPath: BIN.agent, to: '0.1.1-test', bundle: goodBundle, healthySec: 60 });
    sup = supervise(stateDir);
    await waitOn(sup, () => results(id, 'tsk_update1').length > 0, 30_000, 'the update task result');
    assert.equal(results(id, 'tsk_update1')[0]!.outcome, 'succeeded', sup.output());
    await waitOn(sup, () => presences(id).some((p) => p.state === 'online' && p.agentVersion === '0.1.1-test'), 20_000, 'online as 0.1.1-test');
    assert.ok(fake.messages('status', id).some((m) => (m.json as StatusMessage).facts.agentVersion === '0.1.1-test'));
    const committed = (await files.readUpdate())!;
    assert.deepEqual([committed.state, committed.from, committed.to], ['committed', '0.1.0', '0.1.1-test']);
    assert.equal((await files.readCurrent())!.version, '0.1.1-test');
    assert.equal(await sup.stop(15_000), 0, sup.output());

    // Restarted, the supervisor runs the committed version (current.json).
    const onlineBefore = presences(id).length;
    sup = supervise(stateDir);
    await waitOn(sup, () => presences(id).slice(onlineBefore).some((p) => p.state === 'online'), 20_000, 'online again');
    assert.equal(presences(id).slice(onlineBefore).find((p) => p.state === 'online')!.agentVersion, '0.1.1-test');
    assert.equal(await sup.stop(15_000), 0, sup.output());

    // 2. A version that crashes on start: rolled back to 0.1.1-test, which fails the task.
    await leaveInstalledUpdate(stateDir, { taskId: 'tsk_update2', from: '0.1.1-test', fromPath: files.bundlePath('0.1.1-test'), to: '0.1.2-crash', bundle: crashBundle, healthySec: 60 });
    const mark = presences(id).length;
    sup = supervise(stateDir);
    await waitOn(sup, () => results(id, 'tsk_update2').length > 0, 30_000, 'the rolled-back task result');
    const failed = results(id, 'tsk_update2')[0]!;
    assert.equal(failed.outcome, 'failed');
    assert.deepEqual(failed.error, { code: 'rolled_back', message: '0.1.2-crash exited with code 1 before it reported healthy' });
    // The result, resumed from the journal before the link was up, may leave in the queued
    // burst at connect ahead of the presence message: wait for that too.
    await waitOn(sup, () => presences(id).slice(mark).some((p) => p.state === 'online' && p.agentVersion === '0.1.1-test'), 20_000, 'back online on the previous version');
    const rolledBack = (await files.readUpdate())!;
    assert.deepEqual([rolledBack.state, rolledBack.reason], ['rolled-back', '0.1.2-crash exited with code 1 before it reported healthy']);
    assert.equal((await files.readCurrent())!.version, '0.1.1-test');
    assert.match(sup.output(), /pallas-agent: boom/);
    assert.equal(await sup.stop(15_000), 0, sup.output());
  });

  it('an agent not under the supervisor fails agent.update as unsupported, saying why', async () => {
    const stateDir = join(dirs.path, 'alone');
    const p = startNode(BIN.agent, ['--manager', fake.httpUrl, '--token', 'pet_test_token_0123456789', '--state-dir', stateDir, '--driver', 'sim'], { PALLAS_LOG_LEVEL: 'info' });
    procs.push(p);
    await waitFor(() => fake.enrollRequests.length === 2, 20_000, 'enrollment');
    const id = fake.enrollRequests[1]!.deviceId;
    await waitOn(p, () => presences(id).some((m) => m.state === 'online'), 20_000, 'online');
    await fake.command(id, 'cmd/task', { type: 'run', taskId: 'tsk_alone1', operation: { kind: 'agent.update', artifactId: 'art_0123456789' }, timeoutMs: 60_000 });
    await waitOn(p, () => results(id, 'tsk_alone1').length > 0, 20_000, 'the task result');
    const r = results(id, 'tsk_alone1')[0]!;
    assert.equal(r.outcome, 'failed');
    assert.equal(r.error?.code, 'unsupported');
    assert.match(r.error!.message, /not run under its supervisor \(pallas-agent supervise\)/);
    await p.stop();
  });

  it('an agent whose supervisor was killed outright stops by itself (no second agent on the state dir later)', async () => {
    const stateDir = join(dirs.path, 'orphan');
    const sup = supervise(stateDir);
    await waitOn(sup, () => fake.enrollRequests.length === 3, 20_000, 'enrollment');
    const id = fake.enrollRequests[2]!.deviceId;
    await waitOn(sup, () => presences(id).some((m) => m.state === 'online'), 20_000, 'online');
    const started = /"pid":(\d+),"msg":"agent started"/.exec(sup.output());
    assert.ok(started, sup.output());
    const child = Number(started[1]);
    await sup.kill();
    const alive = (): boolean => {
      try {
        process.kill(child, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitOn(sup, () => !alive(), 20_000, 'the orphaned agent to stop');
    assert.ok(presences(id).some((m) => m.state === 'offline'), 'it said offline on its way out');
  });

  it('supervise refuses a bad configuration with exit 2 before starting anything', async () => {
    const p = startNode(BIN.agent, ['supervise', '--driver', 'nope', '--state-dir', join(dirs.path, 'bad')]);
    procs.push(p);
    assert.equal(await p.exited, 2);
    assert.match(p.output(), /pallas-agent supervise: .*nope/);
  });

  it('supervise ends with exit 2 when the agent refuses the rest of the configuration at its first start', async () => {
    // The supervisor checks only what it reads (flags, state dir, log level, driver); an
    // unknown key in the config file is the agent's to refuse, and its exit 2 ends both.
    const config = join(dirs.path, 'bad-key.json');
    await writeFile(config, JSON.stringify({ stateDir: join(dirs.path, 'bad-key'), driver: 'sim', colour: 'blue' }));
    const p = startNode(BIN.agent, ['supervise', '--config', config]);
    procs.push(p);
    assert.equal(await p.exited, 2);
    assert.match(p.output(), /pallas-agent: config file .*colour/);
    assert.match(p.output(), /agent refused its configuration \(exit 2\)/);
  });
});
