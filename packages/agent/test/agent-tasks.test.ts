import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StatusMessage, TaskProgress, TaskResult, checker } from '@pallas/protocol';
import { Agent, type AgentOptions } from '../src/agent.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { FakeManager, waitFor } from './support/fake-manager.js';

// The task runner inside a real agent, over MQTT to the fake manager.

const checkProgress = checker(TaskProgress);
const checkResult = checker(TaskResult);
let fake: FakeManager;
let root: string;
let n = 0;
const agents: Agent[] = [];

before(async () => {
  fake = await FakeManager.start();
  root = await mkdtemp(join(tmpdir(), 'pallas-agent-tasks-'));
});
after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

async function onlineAgent(overrides: Partial<AgentOptions> = {}): Promise<{ agent: Agent; id: string }> {
  const agent = new Agent({
    stateDir: join(root, `dev-${++n}`),
    driver: new SimDriver({ seed: n, latencyMs: 100 }),
    manager: fake.httpUrl,
    token: 'pet_test_token_0123456789',
    linkBackoff: { baseMs: 20, capMs: 100 },
    ...overrides,
  });
  agents.push(agent);
  const online = once(agent, 'online');
  await agent.start();
  await online;
  return { agent, id: agent.deviceId! };
}

const results = (id: string, taskId: string): TaskResult[] =>
  fake.messages('task/result', id).map((m) => m.json as TaskResult).filter((r) => r.taskId === taskId);

describe('agent tasks', () => {
  it('runs a cmd/task: progress 0, then the result, then a status report with the new inventory within the coalescing delay', async () => {
    const { agent, id } = await onlineAgent();
    await waitFor(() => fake.messages('status', id).length === 1, 5000, 'status at connect');
    const taskId = 'tsk_0000000001';
    const finished = once(agent, 'task-finished');
    await fake.command(id, 'cmd/task', { type: 'run', taskId, operation: { kind: 'vm.create', spec: { name: 'app-01', vcpus: 1, memoryMB: 512, diskGB: 8 } }, timeoutMs: 60_000 });
    const [local] = (await finished) as [TaskResult];
    await waitFor(() => results(id, taskId).length > 0, 5000, 'task/result');
    const progress = fake.messages('task/progress', id).map((m) => m.json as TaskProgress);
    assert.equal(progress[0]?.pct, 0);
    for (const p of progress) assert.ok(checkProgress.check(p), checkProgress.explain(p));
    const [result] = results(id, taskId);
    assert.ok(checkResult.check(result), checkResult.explain(result));
    assert.deepEqual(result, local);
    assert.equal(result!.outcome, 'succeeded');
    // The status interval is 60 s: this report is the one the task asked for.
    await waitFor(() => fake.messages('status', id).length === 2, 8000, 'status after the task (gathered over 3 s)');
    const status = fake.messages('status', id)[1]!.json as StatusMessage;
    assert.ok(status.vms.some((vm) => vm.id === result!.vm!.id && vm.name === 'app-01'));
    await agent.stop();
  });

  it('re-sends an unacknowledged result after a reconnect and periodically, and stops once cmd/task-ack names it', async () => {
    const { agent, id } = await onlineAgent({ taskResendIntervalMs: 150 });
    const taskId = 'tsk_0000000002';
    const finished = once(agent, 'task-finished');
    await fake.command(id, 'cmd/task', { type: 'run', taskId, operation: { kind: 'vm.power', vmId: 'vm-101', action: 'on' }, timeoutMs: 60_000 });
    await finished;
    await waitFor(() => results(id, taskId).length >= 1, 5000, 'first result');
    const offline = once(agent, 'offline');
    await fake.stopMqtt();
    await offline;
    const before = results(id, taskId).length;
    await fake.startMqtt();
    await once(agent, 'online');
    await waitFor(() => results(id, taskId).length > before, 5000, 'result re-sent after reconnect');
    const afterReconnect = results(id, taskId).length;
    await waitFor(() => results(id, taskId).length > afterReconnect, 2000, 'periodic re-send');
    // A second task, never acknowledged, is the control: each of its re-sends proves a re-send
    // round ran, so "nothing for the acknowledged one" is checked over real rounds, not a sleep.
    const control = 'tsk_0000000012';
    const controlDone = once(agent, 'task-finished');
    await fake.command(id, 'cmd/task', { type: 'run', taskId: control, operation: { kind: 'vm.power', vmId: 'vm-101', action: 'on' }, timeoutMs: 60_000 });
    await controlDone;
    await fake.command(id, 'cmd/task-ack', { taskIds: [taskId] });
    const journal = join(root, `dev-${n}`, 'tasks.journal');
    const ackJournaled = () => readFileSync(journal, 'utf8').split('\n').filter(Boolean)
      .some((l) => { const r = JSON.parse(l) as { type: string; taskId?: string }; return r.type === 'acked' && r.taskId === taskId; });
    await waitFor(ackJournaled, 5000, 'the ack journaled');
    const acked = results(id, taskId).length;
    const rounds = results(id, control).length;
    await waitFor(() => results(id, control).length >= rounds + 2, 5000, 'two re-send rounds after the ack');
    assert.equal(results(id, taskId).length, acked, 'no re-send after the ack');
    // Not after a reconnect either: the control's re-send on reconnect is the barrier.
    await fake.stopMqtt();
    await fake.startMqtt();
    const online = results(id, control).length;
    await once(agent, 'online');
    await waitFor(() => results(id, control).length > online, 5000, 'the control re-sent after the reconnect');
    assert.equal(results(id, taskId).length, acked);
    assert.ok(results(id, taskId).every((r) => r.outcome === 'succeeded' && r.finishedAt === results(id, taskId)[0]!.finishedAt), 'the same result each time');
    await agent.stop();
  });

  it('a graceful stop mid-task leaves it to the next start, which finishes it', async () => {
    const dir = join(root, `dev-${n + 1}`);
    const { agent, id } = await onlineAgent({ driver: new SimDriver({ seed: 1, latencyMs: 2000 }) });
    const taskId = 'tsk_0000000003';
    await fake.command(id, 'cmd/task', { type: 'run', taskId, operation: { kind: 'vm.create', spec: { name: 'app-02', vcpus: 1, memoryMB: 512, diskGB: 8 } }, timeoutMs: 60_000 });
    await once(agent, 'task-started');
    await agent.stop();
    assert.deepEqual(results(id, taskId), []);
    const again = new Agent({ stateDir: dir, driver: new SimDriver({ seed: 1, latencyMs: 20 }), linkBackoff: { baseMs: 20, capMs: 100 } });
    agents.push(again);
    const finished = once(again, 'task-finished'); // before start(): the resumed task runs at once
    await again.start();
    const [local] = (await finished) as [TaskResult];
    assert.equal(local.outcome, 'succeeded');
    assert.equal(local.vm?.name, 'app-02');
    await waitFor(() => results(id, taskId).length > 0, 5000, 'result once online');
    assert.deepEqual(results(id, taskId)[0], local);
    await again.stop();
  });
});
