/**
 * The esxi driver's OVA deploy against vcsim, at the port: every progress report the driver
 * makes is recorded (the task runner would coalesce them), and the VM is checked with the
 * independent govmomi query tool.
 *
 * Needs Go/govmomi (vcsim) and qemu-img (the test OVA's VMDK): skipped without them on a
 * partial run, failed under CI and npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EsxiDriver } from '../src/drivers/esxi/esxi-driver.js';
import { openOva } from '../src/ova/index.js';
import { recordingContext, rejectsWithCode } from './driver-contract.js';
import { skipUnless } from '@pallas/testkit';
import { buildOva, ovaSkipReason } from './support/ova-builder.js';
import { Vcsim, vcsimSkipReason } from './support/vcsim/vcsim.js';

describe('esxi driver: deployVm against vcsim', { skip: skipUnless(vcsimSkipReason, ovaSkipReason), timeout: 600_000 }, () => {
  let sim: Vcsim;
  let dir: string;
  let driver: EsxiDriver;
  before(async () => {
    sim = await Vcsim.start();
    dir = await mkdtemp(join(tmpdir(), 'pallas-esxi-ova-'));
    const { url, user, password, thumbprint } = sim.info;
    driver = new EsxiDriver({ url, user, password, thumbprint });
  });
  after(async () => {
    await driver?.close();
    await sim?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('imports the OVA: the VM has the OVF\'s shape; progress follows the upload and never goes down', async () => {
    const { path } = await buildOva(dir, { name: 'port-appliance', vcpus: 2, memoryMB: 512, diskMiB: 64, dataMiB: 8 });
    const ova = await openOva(path);
    const ctx = recordingContext();
    const vm = await driver.deployVm(ova, 'port-appliance', ctx);
    assert.deepEqual([vm.name, vm.vcpus, vm.memoryMB, vm.powerState], ['port-appliance', 2, 512, 'off']);
    const q = await sim.vm('port-appliance');
    assert.ok(q);
    assert.deepEqual([q.id, q.vcpus, q.memoryMB, q.powerState, q.disks.length], [vm.id, 2, 512, 'poweredOff', 1]);

    const upload = ctx.calls.filter((c) => c.message?.startsWith('uploading disks'));
    assert.ok(upload.length >= 2, `several upload reports (1 MiB reads of an ${ova.totalFileBytes}-byte VMDK): ${upload.length}`);
    assert.ok(upload.every((c) => c.pct >= 5 && c.pct <= 95));
    const pcts = ctx.calls.map((c) => c.pct);
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b), 'never decreasing');
    assert.equal(pcts.at(-1), 100);
  });

  it('refuses before importing: a taken name, more memory than the host has', async () => {
    const ova = await openOva((await buildOva(dir, { name: 'big-appliance', vcpus: 1, memoryMB: 1_000_000, diskMiB: 8, dataMiB: 1 })).path);
    const before = (await sim.vms()).length;
    await rejectsWithCode(driver.deployVm(ova, 'port-appliance', recordingContext()), 'invalid_spec');
    await rejectsWithCode(driver.deployVm(ova, 'big-appliance', recordingContext()), 'invalid_spec');
    assert.equal((await sim.vms()).length, before, 'nothing made on the host');
  });
});
