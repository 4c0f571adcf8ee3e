/**
 * The soak's reckoning (scripts/soak/reconcile.ts) on hand-made device states: a duplicate it
 * must see, whichever way the second run of a task shows on the device.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Task } from '@pallas/protocol';
import { tempDir } from '@pallas/testkit';
import { reconcile, type Request } from '../../scripts/soak/reconcile.js';

const dirs = tempDir('pallas-soak-reconcile-');
after(() => dirs.cleanup());

const at = '2026-12-07T00:00:00.000Z';
const vm = { id: 'vm-200', name: 'soak-1', powerState: 'off' as const, vcpus: 1, memoryMB: 256, diskGB: 1 };

function device(name: string, history: unknown[]): { deviceId: string; stateDir: string } {
  const stateDir = join(dirs.path, name);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, 'sim-host.json'), JSON.stringify({ vms: [vm], nextId: 201, placement: {}, history }));
  return { deviceId: name, stateDir };
}

function succeededTask(deviceId: string): Task {
  return {
    id: 't-1', deviceId, state: 'succeeded', operation: { kind: 'vm.create', spec: { name: 'soak-1', vcpus: 1, memoryMB: 256, diskGB: 1 } },
  } as unknown as Task;
}

const request = (deviceId: string): Request => ({ marker: 'soak-1', deviceIds: [deviceId], via: 'lb', outcome: 'accepted', taskIds: ['t-1'] });

describe('soak reconcile', () => {
  it('counts nothing amiss for a task that ran once', () => {
    const d = device('once', [{ op: 'createVm', name: 'soak-1', vmId: vm.id, at }]);
    const counts = reconcile([request(d.deviceId)], [succeededTask(d.deviceId)], [d]);
    assert.equal(counts.succeeded, 1);
    assert.equal(counts.duplicated, 0);
    assert.equal(counts.lost, 0);
  });

  it('counts a second run the host refused (its name taken) though the task says succeeded', () => {
    const d = device('twice', [{ op: 'createVm', name: 'soak-1', vmId: vm.id, at }, { op: 'createVm', name: 'soak-1', refused: 'invalid_spec', at }]);
    const counts = reconcile([request(d.deviceId)], [succeededTask(d.deviceId)], [d]);
    assert.equal(counts.duplicated, 1, counts.problems.join('\n'));
    assert.match(counts.problems.join('\n'), /ran 1 more time/);
  });

  it('does not count a run cut short before it changed anything (the agent stopped) and run again', () => {
    const d = device('resumed', [{ op: 'createVm', name: 'soak-1', refused: 'unavailable', at }, { op: 'createVm', name: 'soak-1', vmId: vm.id, at }]);
    const counts = reconcile([request(d.deviceId)], [succeededTask(d.deviceId)], [d]);
    assert.equal(counts.duplicated, 0, counts.problems.join('\n'));
  });
});
