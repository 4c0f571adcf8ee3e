import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { REPO_ROOT, tempDir, waitFor } from '@pallas/testkit';
import { Supervisor } from '../src/update/supervisor.js';
import { probeAgentBundle } from '../src/update/probe-bundle.js';
import { UpdateFiles, type UpdateRecord } from '../src/update/update-files.js';

// The supervisor and the agent's SelfUpdater with real child processes. The children are
// small stand-ins for agent versions (this file writes them): each answers `--version`, and
// when run, resumes the one update task of the test through the real SelfUpdater, reports
// "healthy" (or crashes, or hangs, as told), and writes what happened to events.log. The
// real agent bundle under the real `pallas-agent supervise` is agent-update-process.test.ts.

const dirs = tempDir('pallas-update-sup-');
after(() => dirs.cleanup());
const silent = pino({ level: 'silent' });
const selfUpdaterUrl = pathToFileURL(join(REPO_ROOT, 'packages/agent/dist/update/self-updater.js')).href;

type Behaviour = 'healthy' | 'crash' | 'hang';

/** Writes a stand-in agent of `version` that behaves as told once started. */
async function standIn(dir: string, version: string, behaviour: Behaviour): Promise<string> {
  const file = join(dir, `agent-${version}-${behaviour}.mjs`);
  await writeFile(
    file,
    `import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { SelfUpdater } from ${JSON.stringify(selfUpdaterUrl)};
if (process.argv.includes('--version')) { process.stdout.write('pallas-agent ${version}\\n'); process.exit(0); }
const stateDir = process.argv[process.argv.indexOf('--state-dir') + 1];
const log = (event) => appendFileSync(stateDir + '/events.log', JSON.stringify({ version: '${version}', pid: process.pid, ...event }) + '\\n');
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const updater = new SelfUpdater({ stateDir, version: '${version}', entry: process.env.PALLAS_AGENT_ENTRY, logger: quiet, probeTimeoutMs: 10000,
  requestRestart: () => { log({ event: 'restart' }); process.exit(10); } });
log({ event: 'start', supervised: process.env.PALLAS_AGENT_SUPERVISED, entry: process.env.PALLAS_AGENT_ENTRY });
setInterval(() => {}, 60000);
const task = stateDir + '/task.json';
const result = stateDir + '/result.json';
if (existsSync(task) && !existsSync(result)) {
  const { taskId, next, healthySec } = JSON.parse(readFileSync(task, 'utf8'));
  updater.update({ taskId, healthySec, recovering: true, fetch: async () => next }).then(
    () => { writeFileSync(result, JSON.stringify({ outcome: 'succeeded', by: '${version}' })); log({ event: 'succeeded' }); },
    (err) => { writeFileSync(result, JSON.stringify({ outcome: 'failed', code: err.code, message: err.message, by: '${version}' })); log({ event: 'failed' }); },
  );
}
${behaviour === 'healthy' ? "setTimeout(() => updater.healthy(), 200);" : behaviour === 'crash' ? "setTimeout(() => process.exit(1), 200);" : ''}
`,
  );
  return file;
}

interface Run {
  stateDir: string;
  supervisor: Supervisor;
  done: Promise<number>;
  events: () => Array<{ version: string; event: string; entry?: string; supervised?: string }>;
  result: () => { outcome: string; code?: string; message?: string; by: string } | undefined;
  files: UpdateFiles;
}

/** A state dir whose "installed" agent is `installed`, with an update task to `next` waiting. */
async function supervise(name: string, installed: string, task?: { next: string; healthySec: number }): Promise<Run> {
  const stateDir = join(dirs.path, name);
  await mkdir(stateDir, { recursive: true });
  if (task) await writeFile(join(stateDir, 'task.json'), JSON.stringify({ taskId: `tsk_${name.replace(/[^a-z0-9]/g, '')}`, ...task }));
  const supervisor = new Supervisor({ stateDir, installed, args: ['--state-dir', stateDir], logger: silent, killGraceMs: 2000, restartBackoff: { baseMs: 50, capMs: 200 } });
  const read = (f: string): string => (existsSync(join(stateDir, f)) ? readFileSync(join(stateDir, f), 'utf8') : '');
  return {
    stateDir,
    supervisor,
    done: supervisor.run(),
    events: () => read('events.log').split('\n').filter(Boolean).map((l) => JSON.parse(l)),
    result: () => (read('result.json') ? JSON.parse(read('result.json')) : undefined),
    files: new UpdateFiles(stateDir),
  };
}

describe('agent self-update: supervisor and SelfUpdater', () => {
  it('installs a good version, restarts into it, commits once it is healthy and keeps running it', async () => {
    const bin = join(dirs.path, 'bin-good');
    await mkdir(bin);
    const installed = await standIn(bin, '1.0.0', 'healthy');
    const next = await standIn(bin, '1.1.0', 'healthy');
    const run = await supervise('good', installed, { next, healthySec: 60 });
    const result = await waitFor('the task result', () => run.result(), { timeoutMs: 30_000 });
    assert.deepEqual(result, { outcome: 'succeeded', by: '1.1.0' });
    const update = (await run.files.readUpdate())!;
    assert.equal(update.state, 'committed');
    assert.equal(update.from, '1.0.0');
    assert.equal(update.to, '1.1.0');
    assert.equal(update.fromPath, installed);
    assert.equal(update.toPath, join(run.stateDir, 'agent/versions/1.1.0/pallas-agent.mjs'));
    const current = (await run.files.readCurrent())!;
    assert.deepEqual([current.version, current.path], ['1.1.0', update.toPath]);
    const events = run.events().map((e) => `${e.version} ${e.event}`);
    assert.deepEqual(events, ['1.0.0 start', '1.0.0 restart', '1.1.0 start', '1.1.0 succeeded']);
    assert.equal(run.events()[2]!.entry, update.toPath);
    assert.equal(run.events()[0]!.supervised, '1');
    run.supervisor.stop();
    assert.equal(await run.done, 0);
  });

  it('rolls back a version that exits before it reports healthy, and the old version fails the task with the reason', async () => {
    const bin = join(dirs.path, 'bin-crash');
    await mkdir(bin);
    const installed = await standIn(bin, '1.0.0', 'healthy');
    const next = await standIn(bin, '1.2.0', 'crash');
    const run = await supervise('crash', installed, { next, healthySec: 60 });
    const result = await waitFor('the task result', () => run.result(), { timeoutMs: 30_000 });
    assert.deepEqual(result, { outcome: 'failed', code: 'rolled_back', message: '1.2.0 exited with code 1 before it reported healthy', by: '1.0.0' });
    const update = (await run.files.readUpdate())!;
    assert.equal(update.state, 'rolled-back');
    assert.equal(update.reason, '1.2.0 exited with code 1 before it reported healthy');
    assert.equal(await run.files.readCurrent(), null, 'rolled back to the installed agent: no current.json');
    assert.deepEqual(run.events().map((e) => `${e.version} ${e.event}`), ['1.0.0 start', '1.0.0 restart', '1.2.0 start', '1.0.0 start', '1.0.0 failed']);
    run.supervisor.stop();
    assert.equal(await run.done, 0);
  });

  it('stops and rolls back a version that has not reported healthy by the deadline', async () => {
    const bin = join(dirs.path, 'bin-hang');
    await mkdir(bin);
    const installed = await standIn(bin, '1.0.0', 'healthy');
    const next = await standIn(bin, '1.3.0', 'hang');
    const run = await supervise('hang', installed, { next, healthySec: 3 });
    const result = await waitFor('the task result', () => run.result(), { timeoutMs: 30_000 });
    assert.deepEqual(result, { outcome: 'failed', code: 'rolled_back', message: '1.3.0 did not report healthy within 3 s', by: '1.0.0' });
    assert.equal((await run.files.readUpdate())!.state, 'rolled-back');
    run.supervisor.stop();
    assert.equal(await run.done, 0);
  });

  it('rolls back at start a trial whose deadline passed while no supervisor ran, and runs the old version', async () => {
    const bin = join(dirs.path, 'bin-late');
    await mkdir(bin);
    const installed = await standIn(bin, '1.0.0', 'healthy');
    const stateDir = join(dirs.path, 'late');
    const files = new UpdateFiles(stateDir);
    const toPath = files.bundlePath('1.4.0');
    await mkdir(join(toPath, '..'), { recursive: true });
    await writeFile(toPath, readFileSync(await standIn(bin, '1.4.0', 'healthy')));
    const record: UpdateRecord = { taskId: 'tsk_late', from: '1.0.0', fromPath: installed, to: '1.4.0', toPath, healthySec: 10, deadline: new Date(Date.now() - 1000).toISOString(), state: 'trying', at: new Date().toISOString() };
    await files.writeUpdate(record);
    await files.writeCurrent({ version: '1.4.0', path: toPath, since: record.at }); // a commit cut between its two writes
    await writeFile(join(stateDir, 'task.json'), JSON.stringify({ taskId: 'tsk_late', next: toPath, healthySec: 10 }));
    const run = await supervise('late', installed);
    const result = await waitFor('the task result', () => run.result(), { timeoutMs: 30_000 });
    assert.deepEqual(result, { outcome: 'failed', code: 'rolled_back', message: '1.4.0 did not report healthy within 10 s', by: '1.0.0' });
    assert.equal(await files.readCurrent(), null);
    run.supervisor.stop();
    assert.equal(await run.done, 0);
  });

  it('refuses a file that is not an agent bundle, or the running version, without restarting', async () => {
    const bin = join(dirs.path, 'bin-bad');
    await mkdir(bin);
    const installed = await standIn(bin, '1.0.0', 'healthy');
    const notAgent = join(bin, 'not-an-agent.mjs');
    await writeFile(notAgent, "console.log('hello'); process.exit(3);\n");
    const run = await supervise('notagent', installed, { next: notAgent, healthySec: 60 });
    const result = await waitFor('the task result', () => run.result(), { timeoutMs: 30_000 });
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'invalid_artifact');
    assert.match(result.message!, /not a pallas-agent bundle: "--version" exited with 3/);
    assert.equal(await run.files.readUpdate(), null, 'nothing installed');
    assert.deepEqual(run.events().map((e) => e.event), ['start', 'failed']);
    run.supervisor.stop();
    assert.equal(await run.done, 0);

    const same = await supervise('same', installed, { next: await standIn(bin, '1.0.0', 'crash'), healthySec: 60 });
    const sameResult = await waitFor('the task result', () => same.result(), { timeoutMs: 30_000 });
    assert.deepEqual([sameResult.code, sameResult.message], ['invalid_artifact', 'the artifact is pallas-agent 1.0.0, the version already running']);
    same.supervisor.stop();
    assert.equal(await same.done, 0);
  });

  it('probeAgentBundle reads the version line of a real bundle-like file and refuses other output', async () => {
    const bin = join(dirs.path, 'bin-probe');
    await mkdir(bin);
    assert.equal(await probeAgentBundle(await standIn(bin, '2.0.0-rc.1', 'hang')), '2.0.0-rc.1');
    const chatty = join(bin, 'chatty.mjs');
    await writeFile(chatty, "console.log('pallas-agent 1.0.0 and more');\n");
    await assert.rejects(probeAgentBundle(chatty), { code: 'invalid_artifact', message: /printed "pallas-agent 1.0.0 and more\\n"/ });
    const slow = join(bin, 'slow.mjs');
    await writeFile(slow, 'setTimeout(() => {}, 60000);\n');
    await assert.rejects(probeAgentBundle(slow, 500), { code: 'invalid_artifact', message: /did not answer within 1 s/ });
  });
});
