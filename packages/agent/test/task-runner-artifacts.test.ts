/**
 * The task runner's artifact plumbing with a fake fetcher (the downloader has its own test):
 * vm.deploy from an artifact, progress split between download and deploy, release after the
 * task, grants journaled with `start` for a resumed task, a resend refreshing the URL.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArtifactGrant, TaskOperation, TaskProgress, TaskResult } from '@pallas/protocol';
import { skipUnless } from '@pallas/testkit';
import { pino } from 'pino';
import type { ArtifactFetcher } from '../src/downloads/artifact-fetcher.js';
import type { OperationContext } from '../src/drivers/driver.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { TaskJournal } from '../src/tasks/journal.js';
import { TaskRunner } from '../src/tasks/task-runner.js';
import { buildOva, ovaSkipReason } from './support/ova-builder.js';

const logger = pino({ level: 'silent' });
let root: string;
let ova: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pallas-runner-art-'));
  if (!ovaSkipReason) ova = (await buildOva(root, { name: 'appliance', vcpus: 2, memoryMB: 256 })).path;
});
after(() => rm(root, { recursive: true, force: true }));

const ID = 'art_Abc-123_xyz';
const grant = (url: string, id = ID): ArtifactGrant => ({
  manifest: { id, kind: 'ova', name: 'appliance', version: '1', size: 1, sha256: '0'.repeat(64) },
  signature: 'c2ln', keyId: 'k1', url, expiresAt: new Date(Date.now() + 60_000).toISOString(),
});
const deployOp: TaskOperation = { kind: 'vm.deploy', source: { kind: 'artifact', artifactId: ID } };

/** A fetcher that records what it was asked and answers as told. */
class FakeFetcher implements ArtifactFetcher {
  readonly fetched: ArtifactGrant[] = [];
  readonly released: string[] = [];
  constructor(readonly answer: (grant: ArtifactGrant, ctx: OperationContext) => Promise<string>) {}
  fetch(grant: ArtifactGrant, ctx: OperationContext): Promise<string> {
    this.fetched.push(grant);
    return this.answer(grant, ctx);
  }
  async release(id: string): Promise<void> {
    this.released.push(id);
  }
}

async function setup(dir: string, fetcher: ArtifactFetcher | undefined) {
  await mkdir(dir, { recursive: true });
  const sim = new SimDriver({ seed: 1, latencyMs: 0, stateFile: join(dir, 'sim.json') });
  const journal = await TaskJournal.open({ dir, logger });
  const sent: Array<TaskProgress | TaskResult> = [];
  const runner = new TaskRunner({ driver: sim, journal, logger, ...(fetcher ? { fetcher } : {}), progressIntervalMs: 0, publish: async (_c, m) => void sent.push(structuredClone(m)) });
  runner.start();
  const finished = async (taskId: string): Promise<TaskResult> => {
    const known = journal.get(taskId)?.result;
    if (known) return known;
    for (;;) {
      const [r] = (await once(runner, 'task-finished')) as [TaskResult];
      if (r.taskId === taskId) return r;
    }
  };
  const stop = async (): Promise<void> => {
    runner.stop();
    await sim.close();
    await journal.close();
  };
  return { runner, journal, sent, finished, stop };
}

describe('task runner: artifacts', { skip: skipUnless(ovaSkipReason) }, () => {
  it('deploys from an artifact: fetch with the grant, download 0–50 % and deploy 50–100 %, release after', async () => {
    const fetcher = new FakeFetcher(async (_g, ctx) => {
      ctx.progress(50, 'downloading appliance-1: half');
      ctx.progress(100, 'downloading appliance-1: all');
      return ova;
    });
    const h = await setup(join(root, 'a'), fetcher);
    h.runner.handle({ type: 'run', taskId: 'tsk_00000001', operation: deployOp, timeoutMs: 60_000, artifacts: [grant('/dl/1')] });
    const result = await h.finished('tsk_00000001');
    await h.stop();
    assert.equal(result.outcome, 'succeeded', JSON.stringify(result.error));
    assert.deepEqual([result.vm?.name, result.vm?.vcpus], ['appliance', 2]);
    assert.equal(fetcher.fetched[0]!.url, '/dl/1');
    const progress = h.sent.filter((m): m is TaskProgress => 'pct' in m);
    assert.deepEqual(progress.filter((p) => p.message?.startsWith('downloading')).map((p) => p.pct), [25, 50]);
    assert.ok(progress.some((p) => p.pct > 50 && !p.message?.startsWith('downloading')), 'deploy progress above 50');
    assert.deepEqual(fetcher.released, [ID]);
  });

  it('fails clearly without a grant or without a fetcher', async () => {
    const h = await setup(join(root, 'b'), new FakeFetcher(async () => ova));
    h.runner.handle({ type: 'run', taskId: 'tsk_00000002', operation: deployOp, timeoutMs: 60_000 });
    const r = await h.finished('tsk_00000002');
    await h.stop();
    assert.equal(r.error?.code, 'artifact_not_found');
    assert.match(r.error!.message, new RegExp(`names artifact ${ID} but came without a grant`));
    const h2 = await setup(join(root, 'c'), undefined);
    h2.runner.handle({ type: 'run', taskId: 'tsk_00000003', operation: deployOp, timeoutMs: 60_000, artifacts: [grant('/dl/x')] });
    const r2 = await h2.finished('tsk_00000003');
    await h2.stop();
    assert.equal(r2.error?.code, 'unsupported');
  });

  it('journals the grants with start: a task resumed after a restart downloads with them; a resend refreshes the URL', async () => {
    const dir = join(root, 'd');
    let release!: () => void;
    const hang = new FakeFetcher(() => new Promise(() => { release = () => {}; }));
    const first = await setup(dir, hang);
    first.runner.handle({ type: 'run', taskId: 'tsk_00000004', operation: deployOp, timeoutMs: 60_000, artifacts: [grant('/dl/old')] });
    await once(first.runner, 'task-started');
    assert.equal(hang.fetched[0]!.url, '/dl/old');
    await first.stop(); // like a crash: the task stays open in the journal
    void release;

    let urlAtSecondLook = '';
    let resend!: () => void;
    const resent = new Promise<void>((r) => { resend = r; });
    const fetcher = new FakeFetcher(async (g) => {
      const before = g.url;
      resend();
      await new Promise((r) => setTimeout(r, 50));
      urlAtSecondLook = g.url;
      assert.equal(before, '/dl/old', 'the journaled grant');
      return ova;
    });
    const second = await setup(dir, fetcher);
    await resent;
    // The manager sends the task again after the reconnect, with a fresh URL.
    second.runner.handle({ type: 'run', taskId: 'tsk_00000004', operation: deployOp, timeoutMs: 60_000, artifacts: [grant('/dl/new')] });
    const r = await second.finished('tsk_00000004');
    await second.stop();
    assert.equal(r.outcome, 'succeeded', JSON.stringify(r.error));
    assert.equal(urlAtSecondLook, '/dl/new', 'the running download sees the refreshed URL');
  });
});
