import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PresenceMessage, StatusMessage, TaskProgress, TaskResult } from '@pallas/protocol';
import { startAgentProcess, tempDir, type Proc } from '@pallas/testkit';
import { FakeManager, waitFor } from './support/fake-manager.js';

// kill -9 in the middle of a task, then a restart on the same state dir: the task ends once.
// The sim driver applies a create at its very end, so killed midway it made nothing and the
// restarted agent creates the VM; "the VM exists after the crash" is in task-runner.test.ts.

let fake: FakeManager;
const dirs = tempDir('pallas-task-crash-');
const procs: Proc[] = [];

before(async () => {
  fake = await FakeManager.start();
  fake.statusIntervalSec = 1;
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await fake.close();
  dirs.cleanup();
});

async function agentProcess(stateDir: string, createLatencyMs: number): Promise<Proc> {
  const config = join(dirs.path, `config-${createLatencyMs}.json`);
  await writeFile(config, JSON.stringify({ sim: { seed: 7, latencyMs: { createVm: createLatencyMs } } }));
  const p = startAgentProcess({ managerUrl: fake.httpUrl, token: 'pet_test_token_0123456789', stateDir, args: ['--config', config] });
  procs.push(p);
  return p;
}

describe('task runner across kill -9', () => {
  it('resumes an interrupted create after a restart and reports one result; a duplicate run does not create again', async () => {
    const stateDir = join(dirs.path, 'state');
    const first = await agentProcess(stateDir, 5000);
    await waitFor(() => fake.enrollRequests.length === 1, 10_000, 'enrollment');
    const id = fake.enrollRequests[0]!.deviceId;
    const onlineCount = (): number => fake.messages('presence', id).filter((m) => (m.json as PresenceMessage).state === 'online').length;
    await waitFor(() => onlineCount() === 1, 10_000, 'online');
    const taskId = 'tsk_00000000crash';
    const run = { type: 'run', taskId, operation: { kind: 'vm.create', spec: { name: 'app-crash', vcpus: 1, memoryMB: 512, diskGB: 8 } }, timeoutMs: 60_000 };
    await fake.command(id, 'cmd/task', run);
    // Progress 0 goes out as the task starts, while its journal record is being synced; this
    // case kills the agent once the record is there (before it, the manager's resend runs the
    // task: tasks-sim's agent crash test covers either order end to end).
    await waitFor(() => fake.messages('task/progress', id).some((m) => (m.json as TaskProgress).taskId === taskId), 10_000, 'task started');
    const journalPath = join(stateDir, 'tasks.journal');
    await waitFor(() => existsSync(journalPath) && readFileSync(journalPath, 'utf8').includes('"start"'), 10_000, 'start journaled');
    assert.equal(await first.kill(), 'SIGKILL');
    const journal = (await readFile(join(stateDir, 'tasks.journal'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    assert.deepEqual(journal.map((r) => r.type), ['start']);

    await agentProcess(stateDir, 50);
    const results = (): TaskResult[] => fake.messages('task/result', id).map((m) => m.json as TaskResult).filter((r) => r.taskId === taskId);
    await waitFor(() => results().length > 0, 10_000, 'result after restart');
    const [result] = results();
    assert.equal(result!.outcome, 'succeeded');
    assert.equal(result!.vm?.name, 'app-crash');
    // The manager re-sends the task when the device comes back: answered from the journal.
    await fake.command(id, 'cmd/task', run);
    await waitFor(() => results().length >= 2, 5000, 'result re-sent for the duplicate');
    assert.ok(results().every((r) => r.vm?.id === result!.vm!.id && r.finishedAt === result!.finishedAt), 'the same result every time');
    const statusCount = fake.messages('status', id).length;
    await waitFor(() => fake.messages('status', id).length > statusCount, 5000, 'a later status');
    const vms = (fake.messages('status', id).at(-1)!.json as StatusMessage).vms;
    assert.equal(vms.filter((vm) => vm.name === 'app-crash').length, 1, 'one VM');
    const lines = (await readFile(join(stateDir, 'tasks.journal'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    assert.deepEqual(lines.map((r) => r.type), ['start', 'result']);
  });
});
