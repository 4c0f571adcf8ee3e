/**
 * Names where people read (issue #18 point 1), in-process against the fake manager: a mistyped
 * name finds its zero-padded twin (`extra-1` → `extra-01`), tasks are listed and shown by
 * device and VM name with the ids secondary, and devices that share a name draw a warning.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { editDistance, nameKey, similarNames } from '../src/commands/resolve.js';
import { device, type FakeManager, startFakeManager, task as makeTask } from './fake-manager.js';
import { run, tempDir } from './helpers.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';

describe('similar names', () => {
  it('compares numbers as numbers, so zero-padding does not matter', () => {
    assert.equal(nameKey('Extra-01'), 'extra-1');
    assert.equal(nameKey('site-007-rack-0'), 'site-7-rack-0');
    assert.equal(editDistance('extra-1', 'extra-2'), 1);
    assert.deepEqual(similarNames('extra-1', ['extra-02', 'extra-01', 'other', 'extra-10']), ['extra-01', 'extra-02', 'extra-10']);
    assert.deepEqual(similarNames('edge-lyon', ['edge-lyon-01', 'edge-lyon-010', 'twin']), ['edge-lyon-01', 'edge-lyon-010']);
    assert.deepEqual(similarNames('zzz', ['extra-01', 'edge-lyon']), []);
  });
});

describe('names in the CLI', () => {
  let mgr: FakeManager;
  let env: Record<string, string>;
  before(async () => {
    mgr = await startFakeManager();
  });
  after(() => mgr.close());
  beforeEach(async () => {
    mgr.reset();
    mgr.devices.splice(0, Infinity,
      device({ id: A, name: 'extra-01', vms: [{ id: 'vm-104', name: 'web-104', powerState: 'on', vcpus: 1, memoryMB: 512, diskGB: 10 }] }),
      device({ id: B, name: 'twin', flags: ['duplicate_name'] }),
      device({ id: C, name: 'twin', flags: ['duplicate_name'] }),
    );
    env = { PALLAS_CONFIG_DIR: await tempDir(), PALLAS_SERVER: mgr.url, PALLAS_TOKEN: 'sess-123' };
  });

  it("suggests extra-01 for extra-1", async () => {
    const r = await run(['devices', 'show', 'extra-1'], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "pallas: no device with ID or name 'extra-1' (similar: 'extra-01')\n");
  });

  it('lists and shows tasks by device and VM name, the ids secondary', async () => {
    const t = makeTask({ deviceId: A, operation: { kind: 'vm.power', vmId: 'vm-104', action: 'off' }, deviceName: 'extra-01', vmName: 'web-104' });
    mgr.tasks.push(t);
    const ls = await run(['tasks', 'ls'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    const row = ls.stdout.split('\n').find((l) => l.startsWith(t.id))!;
    assert.match(row, / vm\.power +extra-01 +web-104 +queued /);
    assert.ok(!row.includes(A), 'the device id is not in the table');
    const show = await run(['tasks', 'show', t.id], { env });
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^Operation: +power off VM 'web-104' \(vm-104\)$/m);
    assert.match(show.stdout, new RegExp(`^Device: +extra-01 \\(${A}\\)$`, 'm'));
    assert.match(show.stdout, /^VM: +web-104 \(vm-104\)$/m);
  });

  it('warns about devices that share a name, with the way out', async () => {
    const ls = await run(['devices', 'ls'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stderr, /^warning: more than one device is named 'twin'; give each its own name with `pallas devices rename <device-id> <new-name>`$/m);
    const show = await run(['devices', 'show', B], { env });
    assert.match(show.stderr, /named 'twin'/);
    const json = await run(['devices', 'ls', '--json'], { env });
    assert.equal(json.stderr, '', 'no notes with --json');
  });
});
