import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TaskProgress, TaskResult, checker, type TaskCommand, type TaskOperation, type VmSpec } from '@pallas/protocol';
import { pino } from 'pino';
import type { Driver } from '../src/drivers/driver.js';
import { SimDriver, type SimDriverOptions } from '../src/drivers/sim/sim-driver.js';
import { JOURNAL_FILE, TaskJournal } from '../src/tasks/journal.js';
import { TaskRunner, type TaskChannel, type TaskRunnerOptions } from '../src/tasks/task-runner.js';
import { waitFor } from './support/fake-manager.js';

const logger = pino({ level: 'silent' });
const checkProgress = checker(TaskProgress);
const checkResult = checker(TaskResult);

let root: string;
let dirs = 0;
const cleanups: Array<() => Promise<void>> = [];
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pallas-runner-'));
});
after(async () => {
  for (const c of cleanups) await c();
  await rm(root, { recursive: true, force: true });
});

type Call = { method: string; args: unknown[] };
type Sent = { channel: TaskChannel; message: TaskProgress | TaskResult };

/** The sim driver with some methods replaced (private fields rule out subclassing by prototype). */
function withSim(sim: SimDriver, overrides: Partial<Driver> = {}): Driver {
  return {
    kind: sim.kind,
    hostFacts: () => sim.hostFacts(),
    listVms: () => sim.listVms(),
    createVm: (spec, ctx) => sim.createVm(spec, ctx),
    powerVm: (id, action, ctx) => sim.powerVm(id, action, ctx),
    updateVm: (id, patch, ctx) => sim.updateVm(id, patch, ctx),
    deleteVm: (id, ctx) => sim.deleteVm(id, ctx),
    close: () => sim.close(),
    ...overrides,
  };
}

/** Counts the driver's VM operations, passing them through. */
function counted(driver: Driver): { driver: Driver; calls: Call[] } {
  const calls: Call[] = [];
  const wrapped: Driver = { ...driver };
  for (const method of ['createVm', 'powerVm', 'updateVm', 'deleteVm'] as const) {
    const original = driver[method] as (...args: unknown[]) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      calls.push({ method, args });
      return original(...args);
    };
  }
  return { driver: wrapped, calls };
}

interface Harness {
  runner: TaskRunner;
  journal: TaskJournal;
  sim: SimDriver;
  calls: Call[];
  sent: Sent[];
  dir: string;
  results(taskId?: string): TaskResult[];
  progress(taskId: string): TaskProgress[];
  run(taskId: string, operation: TaskOperation, timeoutMs?: number): void;
  finished(taskId: string): Promise<TaskResult>;
  /** Stops like a graceful agent stop (or a crash: nothing more is journaled). */
  stop(): Promise<void>;
}

async function harness(o: { dir?: string; sim?: SimDriver; driver?: Driver; simOptions?: SimDriverOptions; runner?: Partial<TaskRunnerOptions>; start?: boolean } = {}): Promise<Harness> {
  const dir = o.dir ?? join(root, `r-${++dirs}`);
  await mkdir(dir, { recursive: true });
  const sim = o.sim ?? new SimDriver({ seed: 3, latencyMs: 20, ...o.simOptions });
  const { driver, calls } = counted(o.driver ?? withSim(sim));
  const journal = await TaskJournal.open({ dir, logger });
  const sent: Sent[] = [];
  const runner = new TaskRunner({
    driver,
    journal,
    logger,
    publish: async (channel, message) => {
      sent.push({ channel, message: structuredClone(message) });
    },
    ...o.runner,
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    runner.stop();
    await driver.close();
    await journal.close();
  };
  cleanups.push(stop);
  if (o.start !== false) runner.start();
  const h: Harness = {
    runner, journal, sim, calls, sent, dir, stop,
    results: (taskId) => sent.filter((s) => s.channel === 'task/result' && (!taskId || s.message.taskId === taskId)).map((s) => s.message as TaskResult),
    progress: (taskId) => sent.filter((s) => s.channel === 'task/progress' && s.message.taskId === taskId).map((s) => s.message as TaskProgress),
    run: (taskId, operation, timeoutMs = 60_000) => runner.handle({ type: 'run', taskId, operation, timeoutMs }),
    finished: async (taskId) => {
      const done = journal.get(taskId)?.result;
      if (done) return done;
      for (;;) {
        const [result] = (await once(runner, 'task-finished')) as [TaskResult];
        if (result.taskId === taskId) return result;
      }
    },
  };
  return h;
}

const spec = (name: string): VmSpec => ({ name, vcpus: 1, memoryMB: 512, diskGB: 8 });
const tid = (n: number): string => `tsk_${String(n).padStart(8, '0')}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const journalLines = async (dir: string): Promise<Array<{ type: string; taskId: string }>> =>
  (await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; taskId: string });

describe('task runner', () => {
  it('runs a task: journals start, sends progress 0 first, then the result with the VM; journal before publish', async () => {
    const h = await harness({ simOptions: { latencyMs: 200 } });
    let journaledBeforePublish: boolean | undefined;
    const originalPublish = h.sent.push.bind(h.sent);
    h.sent.push = (...items: Sent[]) => {
      for (const s of items) if (s.channel === 'task/result') journaledBeforePublish = h.journal.get(s.message.taskId)?.result !== undefined;
      return originalPublish(...items);
    };
    h.run(tid(1), { kind: 'vm.create', spec: spec('app-web') });
    const result = await h.finished(tid(1));
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.vm?.name, 'app-web');
    assert.equal(result.vm?.powerState, 'off');
    assert.ok(checkResult.check(result), checkResult.explain(result));
    await waitFor(() => h.results(tid(1)).length === 1);
    assert.equal(journaledBeforePublish, true);
    const progress = h.progress(tid(1));
    assert.equal(progress[0]?.pct, 0, 'progress 0 first');
    for (const p of progress) assert.ok(checkProgress.check(p), checkProgress.explain(p));
    assert.ok(progress.every((p, i) => i === 0 || p.pct >= progress[i - 1]!.pct), 'pct never goes down');
    assert.ok(progress.length <= 3, `coalesced to one per 250 ms: ${progress.map((p) => p.pct).join(',')}`);
    // Progress and result come after the journal's start; the result after the progress.
    const order = h.sent.map((s) => `${s.channel}`);
    assert.equal(order.at(-1), 'task/result');
    assert.deepEqual((await journalLines(h.dir)).map((l) => l.type), ['start', 'result']);
    const vms = await h.sim.listVms();
    assert.equal(vms.filter((v) => v.name === 'app-web').length, 1);
    // power and update results carry the VM; delete's does not.
    const id = result.vm!.id;
    h.run(tid(2), { kind: 'vm.power', vmId: id, action: 'on' });
    assert.equal((await h.finished(tid(2))).vm?.powerState, 'on');
    h.run(tid(3), { kind: 'vm.update', vmId: id, patch: { name: 'app-web2' } });
    assert.equal((await h.finished(tid(3))).vm?.name, 'app-web2');
    h.run(tid(4), { kind: 'vm.power', vmId: id, action: 'off' });
    await h.finished(tid(4));
    h.run(tid(5), { kind: 'vm.delete', vmId: id });
    const deleted = await h.finished(tid(5));
    assert.equal(deleted.outcome, 'succeeded');
    assert.equal(deleted.vm, undefined);
    await h.stop();
  });

  it('coalesces driver progress to one message per interval, the latest winning', async () => {
    const sim = new SimDriver({ seed: 1 });
    const chatty = withSim(sim, {
      powerVm: async (vmId, action, ctx) => {
        for (let pct = 1; pct <= 99; pct++) ctx.progress(pct, `step ${pct}`);
        await sleep(400);
        ctx.progress(50); // going down is ignored
        return sim.powerVm(vmId, action, ctx);
      },
    });
    const h = await harness({ sim, driver: chatty, runner: { progressIntervalMs: 250 } });
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-100', action: 'on' });
    await h.finished(tid(1));
    assert.deepEqual(h.progress(tid(1)).map((p) => [p.pct, p.message]), [[0, undefined], [99, 'step 99']]);
    await h.stop();
  });

  it('holds 100 % back for an interval: dropped when the result follows, sent when the work goes on', async () => {
    const sim = new SimDriver({ seed: 1 });
    const driver = withSim(sim, {
      powerVm: async (vmId, action, ctx) => {
        await sleep(300); // the last report (pct 0) is older than an interval
        ctx.progress(100, 'done');
        return sim.powerVm(vmId, action, { ...ctx, progress: () => {} });
      },
      updateVm: async (vmId, patch, ctx) => {
        await sleep(300);
        ctx.progress(100, 'downloaded');
        await sleep(400); // more work after a step reached 100 %
        return sim.updateVm(vmId, patch, { ...ctx, progress: () => {} });
      },
    });
    const h = await harness({ sim, driver, runner: { progressIntervalMs: 250 } });
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-100', action: 'on' });
    await h.finished(tid(1));
    h.run(tid(2), { kind: 'vm.update', vmId: 'vm-100', patch: { name: 'renamed' } });
    await h.finished(tid(2));
    assert.deepEqual(h.progress(tid(1)).map((p) => [p.pct, p.message]), [[0, undefined]]);
    assert.deepEqual(h.progress(tid(2)).map((p) => [p.pct, p.message]), [[0, undefined], [100, 'downloaded']]);
    await h.stop();
  });

  it('never runs a task twice: a duplicate run is ignored while it runs and answered with the result after', async () => {
    const h = await harness({ simOptions: { latencyMs: 150 } });
    const op: TaskOperation = { kind: 'vm.create', spec: spec('app-db') };
    h.run(tid(1), op);
    h.run(tid(1), op); // queued/running: ignored
    await sleep(50);
    h.run(tid(1), op);
    const result = await h.finished(tid(1));
    await waitFor(() => h.results(tid(1)).length === 1);
    h.run(tid(1), op); // finished: the result again
    await waitFor(() => h.results(tid(1)).length === 2);
    assert.deepEqual(h.results(tid(1))[1], result);
    await sleep(200);
    assert.equal(h.calls.filter((c) => c.method === 'createVm').length, 1);
    assert.equal((await h.sim.listVms()).filter((v) => v.name === 'app-db').length, 1);
    assert.equal((await journalLines(h.dir)).filter((l) => l.type === 'start').length, 1);
    await h.stop();
  });

  it('cancel: a queued task ends cancelled without running; the running one is aborted', async () => {
    const h = await harness({ simOptions: { latencyMs: 400 } });
    // vm-101 is off: powering it on takes the latency.
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-101', action: 'on' });
    h.run(tid(2), { kind: 'vm.power', vmId: 'vm-101', action: 'off' });
    await waitFor(() => h.progress(tid(1)).length > 0);
    h.runner.handle({ type: 'cancel', taskId: tid(2) });
    const queued = await h.finished(tid(2));
    assert.equal(queued.outcome, 'cancelled');
    assert.equal(h.journal.get(tid(1))?.result, undefined, 'cancelled while the first still runs');
    h.runner.handle({ type: 'cancel', taskId: tid(1) });
    const running = await h.finished(tid(1));
    assert.equal(running.outcome, 'cancelled');
    assert.equal(running.error, undefined);
    assert.deepEqual(h.calls.map((c) => c.method), ['powerVm'], 'the queued task never reached the driver');
    assert.equal((await h.sim.listVms()).find((v) => v.id === 'vm-101')?.powerState, 'off', 'an aborted sim operation has no effect');
    assert.deepEqual(h.progress(tid(2)), [], 'a task cancelled in the queue never started');
    // A cancel for a finished task re-sends its result; for an unknown one, nothing.
    const before = h.results().length;
    h.runner.handle({ type: 'cancel', taskId: tid(1) });
    h.runner.handle({ type: 'cancel', taskId: tid(99) });
    await waitFor(() => h.results().length === before + 1);
    assert.equal(h.results().at(-1)?.outcome, 'cancelled');
    await h.stop();
  });

  it('stops at the deadline with timed_out, and times out a task whose deadline passed in the queue', async () => {
    const h = await harness({ simOptions: { latencyMs: 10_000 } });
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-101', action: 'on' }, 150);
    h.run(tid(2), { kind: 'vm.power', vmId: 'vm-101', action: 'off' }, 100);
    const started = Date.now();
    const first = await h.finished(tid(1));
    assert.equal(first.outcome, 'timed_out');
    // The operation takes 10 s: well before that means the deadline aborted it.
    assert.ok(Date.now() - started < 5000, 'aborted, not waited out');
    assert.equal((await h.finished(tid(2))).outcome, 'timed_out');
    assert.deepEqual(h.calls.map((c) => c.method), ['powerVm']);
    await h.stop();
  });

  it('maps driver errors to failed with their code and message, other errors to internal', async () => {
    const h = await harness({ simOptions: { failOn: { createVm: 'no_space' } } });
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-101', action: 'reset' });
    h.run(tid(2), { kind: 'vm.delete', vmId: 'vm-999' });
    h.run(tid(3), { kind: 'vm.create', spec: spec('app-big') });
    const reset = await h.finished(tid(1));
    assert.equal(reset.outcome, 'failed');
    assert.equal(reset.error?.code, 'invalid_state');
    assert.match(reset.error!.message, /cannot reset VM ".+" \(vm-101\): it is off/);
    assert.equal(reset.vm, undefined);
    assert.equal((await h.finished(tid(2))).error?.code, 'not_found', 'outside recovery a missing VM is an error');
    const create = await h.finished(tid(3));
    assert.deepEqual(create.error, { code: 'no_space', message: 'createVm failed: injected failure (sim failOn.createVm = no_space)' });
    await h.stop();

    const sim = new SimDriver({ seed: 1 });
    const broken = withSim(sim, {
      powerVm: async () => {
        throw new TypeError('boom');
      },
    });
    const b = await harness({ sim, driver: broken });
    b.run(tid(4), { kind: 'vm.power', vmId: 'vm-100', action: 'on' });
    assert.deepEqual((await b.finished(tid(4))).error, { code: 'internal', message: 'agent error: boom' });
    await b.stop();
  });

  it('reports a create that took effect despite the abort as succeeded, not cancelled', async () => {
    // A real hypervisor cannot always call back its last step: the VM exists, the call rejects.
    const sim = new SimDriver({ seed: 3 });
    const late = withSim(sim, {
      createVm: async (vmSpec, ctx) => {
        await sim.createVm(vmSpec, { signal: new AbortController().signal, progress: () => {} });
        if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        throw ctx.signal.reason;
      },
    });
    const h = await harness({ sim, driver: late });
    h.run(tid(1), { kind: 'vm.create', spec: spec('app-late') });
    await waitFor(() => h.progress(tid(1)).length > 0);
    await sleep(30);
    h.runner.handle({ type: 'cancel', taskId: tid(1) });
    const result = await h.finished(tid(1));
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.vm?.name, 'app-late');
    await h.stop();
  });

  it('re-sends unacknowledged results when online and periodically, and stops once acked', async () => {
    const h = await harness({ runner: { resendIntervalMs: 100 } });
    h.run(tid(1), { kind: 'vm.power', vmId: 'vm-100', action: 'off' });
    h.run(tid(2), { kind: 'vm.power', vmId: 'vm-100', action: 'on' });
    await h.finished(tid(2));
    await waitFor(() => h.results().length === 2);
    await sleep(250);
    assert.equal(h.results().length, 2, 'no periodic re-send while offline');
    h.runner.online();
    await waitFor(() => h.results().length === 4, 1000, 're-send on online');
    await waitFor(() => h.results(tid(1)).length >= 4, 1000, 'periodic re-send');
    h.runner.ack({ taskIds: [tid(1), tid(2)] });
    await sleep(50);
    const count = h.results().length;
    await sleep(300);
    assert.equal(h.results().length, count, 'acked results are not re-sent');
    assert.deepEqual(h.journal.unacked(), []);
    h.runner.offline();
    await h.stop();
    assert.deepEqual((await journalLines(h.dir)).map((l) => l.type), ['start', 'result', 'start', 'result', 'acked', 'acked']);
  });

  it('after a restart takes an existing VM as the result of an interrupted create, and never makes a second', async () => {
    const dir = join(root, `r-${++dirs}`);
    const sim = new SimDriver({ seed: 3, latencyMs: 20 });
    {
      const before = await harness({ dir, sim, start: false });
      // The crash came after the driver made the VM and before the result was journaled.
      await before.journal.recordStart(tid(1), { kind: 'vm.create', spec: spec('app-pos') }, Date.now() + 60_000);
      await sim.createVm(spec('app-pos'), { signal: new AbortController().signal, progress: () => {} });
      await before.journal.close();
    }
    const h = await harness({ dir, sim });
    const result = await h.finished(tid(1));
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.vm?.name, 'app-pos');
    assert.deepEqual(h.calls, [], 'no second create');
    assert.equal((await sim.listVms()).filter((v) => v.name === 'app-pos').length, 1);
    assert.equal(h.progress(tid(1))[0]?.pct, 0);
    await h.stop();
  });

  it('after a restart runs an interrupted create that had not happened, and counts an interrupted delete of a gone VM as done', async () => {
    const dir = join(root, `r-${++dirs}`);
    const sim = new SimDriver({ seed: 3, latencyMs: 20 });
    {
      const before = await harness({ dir, sim, start: false });
      const deadline = Date.now() + 60_000;
      await before.journal.recordStart(tid(1), { kind: 'vm.delete', vmId: 'vm-777' }, deadline);
      await before.journal.recordStart(tid(2), { kind: 'vm.create', spec: spec('app-nvr') }, deadline);
      await before.journal.recordStart(tid(3), { kind: 'vm.power', vmId: 'vm-101', action: 'on' }, Date.now() - 1);
      await before.journal.close();
    }
    const h = await harness({ dir, sim });
    assert.deepEqual(await h.finished(tid(1)), { taskId: tid(1), outcome: 'succeeded', finishedAt: h.journal.get(tid(1))!.result!.finishedAt });
    const created = await h.finished(tid(2));
    assert.equal(created.outcome, 'succeeded');
    assert.equal(created.vm?.name, 'app-nvr');
    assert.equal((await h.finished(tid(3))).outcome, 'timed_out', 'its deadline passed while the agent was down');
    assert.deepEqual(h.calls.map((c) => c.method), ['deleteVm', 'createVm']);
    await h.stop();
  });

  it('a stop mid-task journals nothing more; the next start resumes the task, which runs once', async () => {
    const dir = join(root, `r-${++dirs}`);
    const first = await harness({ dir, simOptions: { latencyMs: 500 } });
    first.run(tid(1), { kind: 'vm.create', spec: spec('app-kiosk') });
    first.run(tid(2), { kind: 'vm.power', vmId: 'vm-101', action: 'on' });
    await waitFor(() => first.progress(tid(1)).length > 0);
    await first.stop(); // closes the sim driver too: the running create rejects, as after kill -9 it would vanish
    await sleep(50);
    assert.deepEqual((await journalLines(dir)).map((l) => `${l.type} ${l.taskId}`), [`start ${tid(1)}`], 'no result, and the queued task was never journaled');
    assert.deepEqual(first.results(), []);

    const sim = new SimDriver({ seed: 3, latencyMs: 20 });
    const second = await harness({ dir, sim });
    const result = await second.finished(tid(1));
    assert.equal(result.outcome, 'succeeded');
    assert.equal(result.vm?.name, 'app-kiosk');
    // The manager re-sends both (they are still `sent`/`running` for it): the first is answered, the second runs.
    second.run(tid(1), { kind: 'vm.create', spec: spec('app-kiosk') });
    second.run(tid(2), { kind: 'vm.power', vmId: 'vm-101', action: 'on' });
    assert.equal((await second.finished(tid(2))).vm?.powerState, 'on');
    assert.deepEqual(second.calls.map((c) => c.method), ['createVm', 'powerVm']);
    assert.equal((await sim.listVms()).filter((v) => v.name === 'app-kiosk').length, 1);
    await second.stop();
  });

  it('runs tasks one at a time in arrival order', async () => {
    const h = await harness({ simOptions: { latencyMs: 60 } });
    const create: TaskCommand = { type: 'run', taskId: tid(1), operation: { kind: 'vm.create', spec: spec('app-iot') }, timeoutMs: 60_000 };
    h.runner.handle(create);
    const created = await h.finished(tid(1));
    const vmId = created.vm!.id;
    let running = 0;
    let most = 0;
    h.runner.on('task-started', () => (most = Math.max(most, ++running)));
    h.runner.on('task-finished', () => running--);
    h.run(tid(2), { kind: 'vm.power', vmId, action: 'on' });
    h.run(tid(3), { kind: 'vm.power', vmId, action: 'off' });
    h.run(tid(4), { kind: 'vm.delete', vmId });
    const last = await h.finished(tid(4));
    assert.equal(last.outcome, 'succeeded', 'delete after off: the order held');
    assert.equal(most, 1);
    assert.deepEqual(h.results().map((r) => r.taskId), [tid(1), tid(2), tid(3), tid(4)]);
    await h.stop();
  });
});

describe('task runner: vm.deploy', () => {
  it('fails with unsupported on a driver that cannot deploy (the qemu driver today)', async () => {
    const h = await harness();
    h.run(tid(901), { kind: 'vm.deploy', source: { kind: 'file', path: '/nowhere/x.ova' } });
    const result = await h.finished(tid(901));
    assert.equal(result.outcome, 'failed');
    assert.equal(result.error?.code, 'unsupported');
    assert.match(result.error!.message, /cannot deploy OVAs yet/);
  });

  it('opens the OVA first: a missing file fails with invalid_spec naming it, before the driver is called', async () => {
    const sim = new SimDriver({ seed: 3, latencyMs: 0 });
    let called = false;
    const h = await harness({ sim, driver: withSim(sim, { deployVm: async (ova, name, ctx) => { called = true; return sim.deployVm(ova, name, ctx); } }) });
    h.run(tid(902), { kind: 'vm.deploy', source: { kind: 'file', path: '/nowhere/x.ova' } });
    const result = await h.finished(tid(902));
    assert.equal(result.error?.code, 'invalid_spec');
    assert.match(result.error!.message, /\/nowhere\/x\.ova: no such file on the device/);
    assert.equal(called, false);
  });
});

describe('task runner: device.patch and agent.update', () => {
  it('fails device.patch with unsupported, saying why, on a driver that cannot patch (qemu, esxi)', async () => {
    const sim = new SimDriver({ seed: 3, latencyMs: 0 });
    const h = await harness({ sim, driver: { ...withSim(sim), kind: 'qemu' } });
    h.run(tid(951), { kind: 'device.patch', artifactId: 'art_0123456789' });
    const result = await h.finished(tid(951));
    assert.equal(result.outcome, 'failed');
    assert.equal(result.error?.code, 'unsupported');
    assert.match(result.error!.message, /qemu driver cannot patch its host: QEMU's host is the Linux machine/);
  });

  it('fails agent.update with unsupported when the agent has no updater (not under the supervisor)', async () => {
    const h = await harness();
    h.run(tid(952), { kind: 'agent.update', artifactId: 'art_0123456789' });
    const result = await h.finished(tid(952));
    assert.deepEqual([result.outcome, result.error?.code], ['failed', 'unsupported']);
    assert.match(result.error!.message, /pallas-agent supervise/);
  });

  it('hands agent.update to the updater and maps its refusal to the task error', async () => {
    const requests: Array<{ taskId: string; healthySec: number; recovering: boolean }> = [];
    const { UpdateError } = await import('../src/update/update-error.js');
    const h = await harness({
      runner: {
        agentUpdater: {
          update: async (r) => {
            requests.push({ taskId: r.taskId, healthySec: r.healthySec, recovering: r.recovering });
            throw new UpdateError('rolled_back', '9.9.9 exited with code 1 before it reported healthy');
          },
          healthy: () => {},
        },
      },
    });
    h.run(tid(953), { kind: 'agent.update', artifactId: 'art_0123456789', healthySec: 30 });
    const result = await h.finished(tid(953));
    assert.deepEqual(requests, [{ taskId: tid(953), healthySec: 30, recovering: false }]);
    assert.deepEqual(result.error, { code: 'rolled_back', message: '9.9.9 exited with code 1 before it reported healthy' });
  });
});
