/**
 * The qemu driver's OVA deploy at the port, with real qemu-img and real QEMU: OVAs built here
 * (streamOptimized VMDKs made by qemu-img, packed with tar), deployed, then checked without the
 * driver: `vm.json`, `qemu-img info` and `qemu-img compare` on the qcow2 files, and after a
 * power-on the QEMU process's /proc/<pid>/cmdline. Every QEMU started under the test's folder
 * is killed in `after`.
 *
 * Needs QEMU, qemu-img and tar: skipped without them on a partial run, failed under CI and
 * npm test (testkit's `skipUnless`).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.js';
import { openOva } from '../src/ova/index.js';
import { recordingContext, rejectsWithCode } from './driver-contract.js';
import { buildOva, ovfXml } from './support/ova-builder.js';
import { skipUnless } from '@pallas/testkit';
import { argAfter, killQemusUnder, processesOf, qemuSkipReason, qemusMentioning } from './support/qemu-outside.js';

const run = promisify(execFile);
const MiB = 2 ** 20;
const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';
const vcpus = Math.min(2, os.cpus().length);

async function qemuImgInfo(file: string): Promise<{ format: string; 'virtual-size': number }> {
  return JSON.parse((await run('qemu-img', ['info', '--output=json', file])).stdout) as { format: string; 'virtual-size': number };
}

/** A streamOptimized VMDK of `diskMiB` with `dataMiB` random MiB at its start. */
async function makeVmdk(path: string, diskMiB: number, dataMiB: number): Promise<void> {
  const raw = `${path}.raw`;
  await writeFile(raw, randomBytes(dataMiB * MiB));
  await run('truncate', ['-s', `${diskMiB}M`, raw]);
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, path]);
  await rm(raw);
}

/** An OVA of `ovf` and the given files (paths in `work`), descriptor first, as the builder packs. */
async function pack(dir: string, work: string, name: string, ovf: string, files: string[]): Promise<string> {
  await writeFile(join(work, `${name}.ovf`), ovf);
  const path = join(dir, `${name}.ova`);
  await run('tar', ['--format=ustar', '-cf', path, '-C', work, `${name}.ovf`, ...files]);
  return path;
}

/** A one-disk OVA whose disk file is `content` (not necessarily a VMDK) and whose OVF says `capacityMiB`. */
async function ovaWithDisk(dir: string, name: string, diskFile: string, capacityMiB: number): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'pqd-work-'));
  try {
    const vmdkName = `${name}-disk1.vmdk`;
    await run('cp', [diskFile, join(work, vmdkName)]);
    const bytes = (await stat(diskFile)).size;
    const ovf = ovfXml({ name, vcpus: 1, memoryMB: 128, diskMiB: capacityMiB, network: 'VM Network', vmdkName, vmdkBytes: bytes });
    return await pack(dir, work, name, ovf, [vmdkName]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe('qemu driver: deployVm', { timeout: 300_000, skip: skipUnless(qemuSkipReason) }, () => {
  let root: string;
  let ovas: string;
  let vmDir: string;
  let driver: QemuDriver;
  before(async () => {
    // Short and under /tmp: QMP socket paths must fit in 107 bytes.
    root = await mkdtemp('/tmp/pqd-');
    ovas = join(root, 'ovas');
    vmDir = join(root, 'vms');
    await run('mkdir', ['-p', ovas]);
    driver = new QemuDriver({ dir: vmDir, accel });
  });
  after(async () => {
    await driver?.close();
    if (root) {
      killQemusUnder(root);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('deploys an OVA: the OVF\'s shape, a qcow2 equal to the VMDK, progress by conversion; powered on, QEMU runs with the OVF\'s memory', async () => {
    const { path } = await buildOva(ovas, { name: 'deploy-one', vcpus, memoryMB: 192, diskMiB: 32, dataMiB: 6 });
    const ova = await openOva(path);
    const ctx = recordingContext();
    const vm = await driver.deployVm(ova, 'deploy-one', ctx);
    assert.deepEqual({ ...vm, id: typeof vm.id }, { id: 'string', name: 'deploy-one', powerState: 'off', vcpus, memoryMB: 192, diskGB: (32 * MiB) / 1e9 });
    assert.deepEqual((await driver.listVms()).find((v) => v.id === vm.id), vm, 'listed as deployVm returned it');

    const folder = join(vmDir, vm.id);
    const record = JSON.parse(await readFile(join(folder, 'vm.json'), 'utf8'));
    assert.deepEqual({ ...record, createdAt: typeof record.createdAt }, { id: vm.id, name: 'deploy-one', vcpus, memoryMB: 192, diskGB: (32 * MiB) / 1e9, network: 'user', createdAt: 'string' });
    assert.deepEqual((await readdir(folder)).sort(), ['disk.qcow2', 'vm.json'], 'no temporary copy of the VMDK left');
    const info = await qemuImgInfo(join(folder, 'disk.qcow2'));
    assert.equal(info.format, 'qcow2');
    assert.equal(info['virtual-size'], 32 * MiB, 'the OVF disk capacity');
    // The guest sees the bytes the OVA's maker put in the VMDK.
    const extracted = await mkdtemp(join(tmpdir(), 'pqd-x-'));
    try {
      await run('tar', ['-xf', path, '-C', extracted, 'deploy-one-disk1.vmdk']);
      await run('qemu-img', ['compare', '-f', 'vmdk', '-F', 'qcow2', join(extracted, 'deploy-one-disk1.vmdk'), join(folder, 'disk.qcow2')]);
    } finally {
      await rm(extracted, { recursive: true, force: true });
    }

    const pcts = ctx.calls.map((c) => c.pct);
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b), `never decreasing: ${pcts.join(',')}`);
    assert.equal(pcts.at(-1), 100);
    const converting = ctx.calls.filter((c) => c.message?.startsWith('converting deploy-one-disk1.vmdk'));
    assert.ok(converting.length >= 3, `several conversion reports: ${JSON.stringify(ctx.calls)}`);
    assert.ok(converting.every((c) => c.pct >= 5 && c.pct <= 95));
    assert.ok(converting.some((c) => c.pct > 5 && c.pct < 95), `conversion progress between the ends: ${JSON.stringify(converting)}`);

    assert.equal((await driver.powerVm(vm.id, 'on', recordingContext())).powerState, 'on');
    const pid = Number(await readFile(join(folder, 'qemu.pid'), 'utf8'));
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    assert.match(argv[0]!, /qemu-system-x86_64$/);
    assert.equal(argAfter(argv, '-m'), '192M', `QEMU has the OVF's memory: ${argv.join(' ')}`);
    assert.equal(argAfter(argv, '-smp'), String(vcpus));
    assert.ok(argv.some((a) => a.includes(join(folder, 'disk.qcow2'))), 'and the converted disk');
    assert.equal((await driver.powerVm(vm.id, 'off', recordingContext())).powerState, 'off');
    await driver.deleteVm(vm.id, recordingContext());
  });

  it('deploys several disks: each converted, a VMDK smaller than its OVF capacity grown to it, a blank disk created; all attached', async () => {
    const work = await mkdtemp(join(tmpdir(), 'pqd-work-'));
    let path: string;
    try {
      await makeVmdk(join(work, 'sys.vmdk'), 16, 2);
      await makeVmdk(join(work, 'data.vmdk'), 8, 1);
      const base = ovfXml({ name: 'deploy-multi', vcpus: 1, memoryMB: 128, diskMiB: 16, network: 'VM Network', vmdkName: 'sys.vmdk', vmdkBytes: (await stat(join(work, 'sys.vmdk'))).size });
      const ovf = base
        .replace('</References>', `  <File ovf:href="data.vmdk" ovf:id="file2" ovf:size="${(await stat(join(work, 'data.vmdk'))).size}"/>\n  </References>`)
        .replace(
          '</DiskSection>',
          '  <Disk ovf:capacity="12" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk2" ovf:fileRef="file2" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>\n' +
            '    <Disk ovf:capacity="4194304" ovf:diskId="vmdisk3"/>\n  </DiskSection>',
        );
      path = await pack(ovas, work, 'deploy-multi', ovf, ['sys.vmdk', 'data.vmdk']);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const vm = await driver.deployVm(await openOva(path), 'deploy-multi', recordingContext());
    assert.equal(vm.diskGB, (32 * MiB) / 1e9, 'the disks\' total capacity');
    const folder = join(vmDir, vm.id);
    assert.deepEqual(JSON.parse(await readFile(join(folder, 'vm.json'), 'utf8')).extraDisks, ['disk-2.qcow2', 'disk-3.qcow2']);
    assert.deepEqual(
      await Promise.all(['disk.qcow2', 'disk-2.qcow2', 'disk-3.qcow2'].map(async (f) => [(await qemuImgInfo(join(folder, f))).format, (await qemuImgInfo(join(folder, f)))['virtual-size']])),
      [['qcow2', 16 * MiB], ['qcow2', 12 * MiB], ['qcow2', 4 * MiB]],
    );
    await driver.powerVm(vm.id, 'on', recordingContext());
    const argv = [...qemusMentioning(folder).values()][0];
    assert.ok(argv, 'QEMU runs for the VM');
    for (const f of ['disk.qcow2', 'disk-2.qcow2', 'disk-3.qcow2']) assert.ok(argv.some((a) => a.includes(join(folder, f))), `${f} attached: ${argv.join(' ')}`);
    await driver.powerVm(vm.id, 'off', recordingContext());
    await driver.deleteVm(vm.id, recordingContext());
  });

  it('an abort during the conversion kills qemu-img and removes the half-made VM; the same deploy works afterwards', async () => {
    const { path } = await buildOva(ovas, { name: 'deploy-abort', vcpus: 1, memoryMB: 128, diskMiB: 256, dataMiB: 96 });
    const ova = await openOva(path);
    const controller = new AbortController();
    const reason = new Error('cancelled by the test');
    const ctx = recordingContext(controller.signal);
    const progress = ctx.progress;
    ctx.progress = (pct, message) => {
      progress(pct, message);
      if (message?.startsWith('converting') && pct > 5) controller.abort(reason);
    };
    await assert.rejects(driver.deployVm(ova, 'deploy-abort', ctx), (err) => err === reason);
    assert.ok(ctx.calls.some((c) => c.message?.startsWith('converting') && c.pct > 5 && c.pct < 95), 'aborted midway through the conversion');
    await waitUntil('qemu-img killed and the staged folder removed', async () => {
      const left = (await readdir(vmDir)).filter((n) => n.startsWith('.'));
      return left.length === 0 && processesOf('qemu-img', vmDir).length === 0;
    });
    assert.equal((await driver.listVms()).some((v) => v.name === 'deploy-abort'), false);

    const vm = await driver.deployVm(ova, 'deploy-abort', recordingContext());
    assert.equal((await qemuImgInfo(join(vmDir, vm.id, 'disk.qcow2')))['virtual-size'], 256 * MiB);
    await driver.deleteVm(vm.id, recordingContext());
  });

  it('refuses with clear codes and leaves nothing behind: taken name, too big for the host, not a sparse VMDK, no space, a VMDK qemu-img cannot read', async () => {
    const { path } = await buildOva(ovas, { name: 'deploy-taken', vcpus: 1, memoryMB: 128, diskMiB: 8, dataMiB: 1 });
    const taken = await driver.deployVm(await openOva(path), 'deploy-taken', recordingContext());
    const before = await readdir(vmDir);

    await rejectsWithCode(driver.deployVm(await openOva(path), 'deploy-taken', recordingContext()), 'invalid_spec');
    const big = await buildOva(ovas, { name: 'deploy-big', vcpus: 1, memoryMB: 1_000_000, diskMiB: 8, dataMiB: 1 });
    await rejectsWithCode(driver.deployVm(await openOva(big.path), 'deploy-big', recordingContext()), 'invalid_spec');
    const many = await buildOva(ovas, { name: 'deploy-cpus', vcpus: os.cpus().length + 1, memoryMB: 128, diskMiB: 8, dataMiB: 1 });
    await rejectsWithCode(driver.deployVm(await openOva(many.path), 'deploy-cpus', recordingContext()), 'invalid_spec');

    const scratch = await mkdtemp(join(tmpdir(), 'pqd-s-'));
    try {
      // A raw file where the VMDK should be; and a VMDK text descriptor naming a host file as its extent.
      await writeFile(join(scratch, 'raw.img'), randomBytes(MiB));
      await writeFile(join(scratch, 'desc.vmdk'), '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/passwd" 0\n');
      for (const [name, file] of [['deploy-raw', 'raw.img'], ['deploy-desc', 'desc.vmdk']] as const) {
        const err = await driver.deployVm(await openOva(await ovaWithDisk(ovas, name, join(scratch, file), 1)), name, recordingContext()).then(() => undefined, (e: unknown) => e);
        assert.equal((err as { code?: string })?.code, 'invalid_spec', String(err));
        assert.match((err as Error).message, /is not a sparse or streamOptimized VMDK/);
      }
      // 60 TB of disk capacity (a valid diskGB) on a test machine's filesystem.
      await makeVmdk(join(scratch, 'small.vmdk'), 4, 1);
      const huge = await ovaWithDisk(ovas, 'deploy-huge', join(scratch, 'small.vmdk'), 60_000_000);
      await rejectsWithCode(driver.deployVm(await openOva(huge), 'deploy-huge', recordingContext()), 'no_space');
      // A VMDK damaged inside its compressed grains: qemu-img fails, and says why.
      await makeVmdk(join(scratch, 'bad.vmdk'), 8, 2);
      const bad = await readFile(join(scratch, 'bad.vmdk'));
      bad.fill(0x5a, 200_000, 240_000);
      await writeFile(join(scratch, 'bad.vmdk'), bad);
      const damaged = await ovaWithDisk(ovas, 'deploy-bad', join(scratch, 'bad.vmdk'), 8);
      const err = await driver.deployVm(await openOva(damaged), 'deploy-bad', recordingContext()).then(() => undefined, (e: unknown) => e);
      assert.equal((err as { code?: string })?.code, 'host_error', String(err));
      assert.match((err as Error).message, /qemu-img convert failed .*: qemu-img: /s, 'qemu-img\'s own words');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    assert.deepEqual((await readdir(vmDir)).sort(), before.sort(), 'no VM folder, staged or not, was left');
    const names = (await driver.listVms()).map((v) => v.name);
    assert.deepEqual(names.filter((n) => n === 'deploy-taken'), ['deploy-taken'], 'the name stays with the first VM');
    for (const refused of ['deploy-big', 'deploy-cpus', 'deploy-raw', 'deploy-desc', 'deploy-huge', 'deploy-bad']) assert.ok(!names.includes(refused), refused);
    await driver.deleteVm(taken.id, recordingContext());
  });
});

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
