import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '@pallas/testkit';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import type { SimSnapshot } from '../src/drivers/sim/sim-state-file.js';

const ctx = () => ({ signal: new AbortController().signal, progress: () => {} });

describe('sim driver with a state file', () => {
  const dir = tempDir('pallas-sim-state-');
  after(() => dir.cleanup());
  const stateFile = join(dir.path, 'sim-host.json');

  it('keeps VMs across driver instances, records what it did, and picks up changes made by hand', async () => {
    const first = new SimDriver({ seed: 7, latencyMs: 0, stateFile });
    const seeded = await first.listVms();
    const vm = await first.createVm({ name: 'kept', vcpus: 1, memoryMB: 256, diskGB: 1 }, ctx());
    await first.powerVm(vm.id, 'on', ctx());
    await first.powerVm(vm.id, 'on', ctx()); // no change: not recorded
    await first.close();

    const second = new SimDriver({ seed: 7, latencyMs: 0, stateFile });
    const vms = await second.listVms();
    assert.equal(vms.length, seeded.length + 1);
    assert.equal(vms.find((v) => v.id === vm.id)?.powerState, 'on');
    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as SimSnapshot;
    assert.deepEqual(saved.history.map((h) => [h.op, h.vmId]), [['createVm', vm.id], ['powerVm', vm.id]]);

    // By hand on the host: the VM is renamed and powered off behind the driver's back.
    saved.vms = saved.vms.map((v) => (v.id === vm.id ? { ...v, name: 'renamed-by-hand', powerState: 'off' } : v));
    await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
    writeFileSync(stateFile, JSON.stringify(saved));
    const changed = (await second.listVms()).find((v) => v.id === vm.id);
    assert.equal(changed?.name, 'renamed-by-hand');
    assert.equal(changed?.powerState, 'off');
    // Ids stay unique after the reload.
    const next = await second.createVm({ name: 'after', vcpus: 1, memoryMB: 256, diskGB: 1 }, ctx());
    assert.notEqual(next.id, vm.id);
    await second.close();
  });

  it('records the calls it refused, so that a task run twice shows even when the host refused its second run', async () => {
    const file = join(dir.path, 'refused.json');
    const driver = new SimDriver({ seed: 8, latencyMs: 0, stateFile: file });
    const vm = await driver.createVm({ name: 'once', vcpus: 1, memoryMB: 256, diskGB: 1 }, ctx());
    await assert.rejects(driver.createVm({ name: 'once', vcpus: 1, memoryMB: 256, diskGB: 1 }, ctx()), /exists/);
    const cancelled = new AbortController();
    cancelled.abort(new Error('cancelled'));
    await assert.rejects(driver.powerVm(vm.id, 'on', { signal: cancelled.signal, progress: () => {} }), /cancelled/);
    await driver.close();
    const saved = JSON.parse(readFileSync(file, 'utf8')) as SimSnapshot;
    assert.deepEqual(saved.history.map(({ at: _at, ...h }) => h), [
      { op: 'createVm', name: 'once', vmId: vm.id },
      { op: 'createVm', name: 'once', refused: 'invalid_spec' },
      { op: 'powerVm', vmId: vm.id, refused: 'aborted' },
    ]);
  });
});
