import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ArtifactGrant, TaskOperation, TaskResult } from '@pallas/protocol';
import { pino } from 'pino';
import { JOURNAL_FILE, TaskJournal, type TaskJournalOptions } from '../src/tasks/journal.js';

const logger = pino({ level: 'silent' });
const op: TaskOperation = { kind: 'vm.power', vmId: 'vm-100', action: 'off' };
const id = (n: number): string => `tsk_${String(n).padStart(6, '0')}`;
const result = (n: number, outcome: TaskResult['outcome'] = 'succeeded'): TaskResult => ({ taskId: id(n), outcome, finishedAt: new Date().toISOString() });

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pallas-journal-'));
});
after(() => rm(root, { recursive: true, force: true }));

async function fresh(options: Partial<TaskJournalOptions> = {}): Promise<{ journal: TaskJournal; dir: string; open: () => Promise<TaskJournal> }> {
  const dir = join(root, `j-${++n}`);
  await mkdir(dir);
  const open = (): Promise<TaskJournal> => TaskJournal.open({ dir, logger, ...options });
  return { journal: await open(), dir, open };
}

const lines = async (dir: string): Promise<Array<{ type: string; taskId: string }>> =>
  (await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; taskId: string });

describe('task journal', () => {
  it('folds start, result and acked records, and reads them back after a reopen', async () => {
    const { journal, dir, open } = await fresh();
    await journal.recordStart(id(1), op, 1000);
    await journal.recordStart(id(2), op, 2000);
    await journal.recordStart(id(3), op, 3000);
    await journal.recordResult(result(1));
    await journal.recordResult(result(2, 'failed'));
    assert.equal(await journal.recordAcked(id(1)), true);
    assert.equal(await journal.recordAcked(id(1)), false, 'acked twice');
    assert.equal(await journal.recordAcked(id(3)), false, 'no result yet');
    assert.equal(await journal.recordAcked(id(9)), false, 'unknown');
    await assert.rejects(journal.recordStart(id(1), op, 1), /already in the journal/);
    await assert.rejects(journal.recordResult(result(8)), /never started/);
    const check = (j: TaskJournal): void => {
      assert.deepEqual(j.unacked().map((e) => e.taskId), [id(2)]);
      assert.deepEqual(j.interrupted().map((e) => e.taskId), [id(3)]);
      assert.equal(j.get(id(1))?.result?.outcome, 'succeeded');
      assert.ok(j.get(id(1))?.ackedAt !== undefined);
      assert.deepEqual(j.get(id(3))?.operation, op);
      assert.equal(j.get(id(3))?.deadlineAt, 3000);
    };
    check(journal);
    await journal.close();
    await assert.rejects(journal.recordStart(id(4), op, 1), /closed/);
    assert.equal((await stat(join(dir, JOURNAL_FILE))).mode & 0o777, 0o600);
    assert.deepEqual((await lines(dir)).map((r) => r.type), ['start', 'start', 'start', 'result', 'result', 'acked']);
    const again = await open();
    check(again);
    await again.close();
  });

  it('keeps a task\'s artifact grants with its start, across a reopen and a compaction (open tasks only)', async () => {
    const grant: ArtifactGrant = {
      manifest: { id: 'art_x1234567', kind: 'ova', name: 'fw', version: '1', size: 10, sha256: 'a'.repeat(64) },
      signature: 'c2ln', keyId: 'k1', url: '/dl/art_x1234567?device=d&exp=1&sig=s', expiresAt: new Date(0).toISOString(),
    };
    const deploy: TaskOperation = { kind: 'vm.deploy', source: { kind: 'artifact', artifactId: 'art_x1234567' } };
    const { journal, open } = await fresh({ compactAfter: 3 });
    await journal.recordStart(id(1), deploy, 1000, [grant]);
    await journal.recordStart(id(2), deploy, 1000, [grant]);
    await journal.recordStart(id(3), op, 1000);
    await journal.close();
    const again = await open();
    assert.deepEqual(again.get(id(1))?.artifacts, [grant]);
    assert.equal(again.get(id(3))?.artifacts, undefined);
    await again.recordResult(result(2)); // past compactAfter: rewritten
    await again.close();
    const compacted = await open();
    assert.deepEqual(compacted.get(id(1))?.artifacts, [grant], 'an open task keeps its grants');
    assert.equal(compacted.get(id(2))?.artifacts, undefined, 'a finished one does not need them');
    await compacted.close();
  });

  it('ignores a torn last line and cuts it off before appending', async () => {
    const { journal, dir, open } = await fresh();
    await journal.recordStart(id(1), op, 1000);
    await journal.close();
    // A crash in the middle of writing the result record.
    await appendFile(join(dir, JOURNAL_FILE), '{"type":"result","taskId":"tsk_000001","res');
    const reopened = await open();
    assert.deepEqual(reopened.interrupted().map((e) => e.taskId), [id(1)]);
    await reopened.recordResult(result(1));
    await reopened.close();
    assert.deepEqual((await lines(dir)).map((r) => r.type), ['start', 'result']);
    const third = await open();
    assert.deepEqual(third.unacked().map((e) => e.taskId), [id(1)]);
    await third.close();
  });

  it('skips an invalid line in the middle and keeps the rest', async () => {
    const { journal, dir, open } = await fresh();
    await journal.close();
    const good = (k: number): string => JSON.stringify({ type: 'start', taskId: id(k), operation: op, deadlineAt: 1, at: 1 });
    await writeFile(join(dir, JOURNAL_FILE), `${good(1)}\nnot json\n{"type":"start","taskId":"x"}\n${good(2)}\n`);
    const reopened = await open();
    assert.deepEqual(reopened.interrupted().map((e) => e.taskId), [id(1), id(2)]);
    await reopened.close();
  });

  it('compacts past compactAfter records: keeps live entries and young tombstones, drops old ones', async () => {
    let now = 1_000_000;
    const day = 86_400_000;
    const { journal, dir, open } = await fresh({ compactAfter: 10, tombstoneMs: 7 * day, now: () => now });
    // 1: acked 8 days ago (dropped). 2: acked 1 day ago (tombstone). 3: unacked result. 4: running.
    for (const k of [1, 2, 3, 4]) await journal.recordStart(id(k), op, now + day);
    for (const k of [1, 2, 3]) await journal.recordResult(result(k));
    await journal.recordAcked(id(1));
    now += 7 * day;
    await journal.recordAcked(id(2)); // record 9
    now += day;
    assert.equal((await lines(dir)).length, 9);
    await journal.recordStart(id(5), op, now + day); // 10
    await journal.recordResult(result(5)); // 11: over the limit, compacts
    const kept = await lines(dir);
    assert.deepEqual(kept.map((r) => `${r.type} ${r.taskId.slice(-1)}`), [
      'start 2', 'result 2', 'acked 2',
      'start 3', 'result 3',
      'start 4',
      'start 5', 'result 5',
    ]);
    assert.equal(journal.get(id(1)), undefined, 'old tombstone forgotten');
    assert.equal(journal.get(id(2))?.result?.outcome, 'succeeded', 'young tombstone still known');
    // Appends after the rewrite go to the new file.
    await journal.recordAcked(id(3));
    await journal.close();
    const reopened = await open();
    assert.deepEqual(reopened.unacked().map((e) => e.taskId), [id(5)]);
    assert.deepEqual(reopened.interrupted().map((e) => e.taskId), [id(4)]);
    assert.ok(reopened.get(id(2))?.ackedAt !== undefined);
    assert.equal(reopened.get(id(1)), undefined);
    await reopened.close();
  });

  it('does not rewrite on every append when many entries are live', async () => {
    const { journal, dir } = await fresh({ compactAfter: 4 });
    for (let k = 1; k <= 6; k++) await journal.recordStart(id(k), op, 1); // compacts at 5: keeps 5, next at 10
    assert.equal((await lines(dir)).length, 6);
    for (let k = 7; k <= 10; k++) await journal.recordStart(id(k), op, 1);
    assert.equal((await lines(dir)).length, 10);
    await journal.recordStart(id(11), op, 1); // compacts again: keeps all 11
    assert.equal((await lines(dir)).length, 11);
    await journal.close();
  });

  it('serializes concurrent appends in call order', async () => {
    const { journal, dir } = await fresh();
    await Promise.all(Array.from({ length: 20 }, (_, k) => journal.recordStart(id(k), op, k)));
    await journal.close();
    assert.deepEqual((await lines(dir)).map((r) => r.taskId), Array.from({ length: 20 }, (_, k) => id(k)));
  });
});
