import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { skipUnless } from '@pallas/testkit';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { OvaError, openOva, parseOvf, unitBytes } from '../src/ova/index.js';
import { recordingContext, rejectsWithCode } from './driver-contract.js';
import { buildOva, ovaSkipReason, ovfXml } from './support/ova-builder.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'pallas-ova-test-'));
after(() => rm(dir, { recursive: true, force: true }));

const XML = ovfXml({ name: 'web-appliance', vcpus: 2, memoryMB: 512, diskMiB: 2048, network: 'VM Network', vmdkName: 'disk1.vmdk', vmdkBytes: 1234 });

describe('OVF descriptor', () => {
  it('reads name, vCPUs, memory, disks with capacity and networks', () => {
    assert.deepEqual(parseOvf(XML), {
      name: 'web-appliance',
      vcpus: 2,
      memoryMB: 512,
      disks: [{ diskId: 'vmdisk1', href: 'disk1.vmdk', capacityBytes: 2048 * 2 ** 20, format: 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized' }],
      networks: ['VM Network'],
    });
  });

  it('converts allocation units', () => {
    assert.equal(unitBytes('byte * 2^30', 1), 2 ** 30);
    assert.equal(unitBytes('byte*2^20', 1), 2 ** 20);
    assert.equal(unitBytes('GigaBytes', 1), 2 ** 30);
    assert.equal(unitBytes(undefined, 7), 7);
    assert.throws(() => unitBytes('furlongs', 1), /unsupported allocation units "furlongs"/);
    // Memory in GB.
    const gb = XML.replace('<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>', '<rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>').replace('<rasd:VirtualQuantity>512</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>4</rasd:VirtualQuantity>');
    assert.equal(parseOvf(gb).memoryMB, 4096);
  });

  it('says what is wrong with a descriptor it cannot use', () => {
    const cases: Array<[string, RegExp]> = [
      ['<Envelope><oops></Envelope>', /not well-formed XML/],
      ['<Foo/>', /no <Envelope>/],
      [XML.replace(/<VirtualSystem[\s\S]*<\/VirtualSystem>/, ''), /no <VirtualSystem>/],
      [XML.replace('<rasd:ResourceType>3</rasd:ResourceType>', '<rasd:ResourceType>99</rasd:ResourceType>'), /no CPU item/],
      [XML.replace('<rasd:ResourceType>4</rasd:ResourceType>', '<rasd:ResourceType>99</rasd:ResourceType>'), /no memory item/],
      [XML.replace('ovf:capacity="2048"', 'ovf:capacity="-1"'), /disk vmdisk1 capacity must be a positive number/],
      [XML.replace('ovf:fileRef="file1"', 'ovf:fileRef="file9"'), /refers to file "file9"/],
    ];
    for (const [xml, re] of cases) assert.throws(() => parseOvf(xml), re, String(re));
  });

  it('does not expand entities', () => {
    const evil = XML.replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "AAAAAAAAAA">]>').replace('<Name>web-appliance</Name>', '<Name>&a;</Name>');
    assert.equal(parseOvf(evil).name, '&a;');
  });
});

describe('OVA package', { skip: skipUnless(ovaSkipReason) }, () => {
  let ova: { path: string; vmdkBytes: number };
  before(async () => {
    ova = await buildOva(dir, { name: 'tiny', vcpus: 2, memoryMB: 512, diskMiB: 16, dataMiB: 2 });
  });

  it('opens an OVA: descriptor parsed, disk file located, streamed byte for byte', async () => {
    const pkg = await openOva(ova.path);
    assert.equal(pkg.descriptor.name, 'tiny');
    assert.equal(pkg.descriptor.vcpus, 2);
    assert.equal(pkg.descriptor.memoryMB, 512);
    assert.equal(pkg.disks.length, 1);
    assert.equal(pkg.disks[0]!.capacityBytes, 16 * 2 ** 20);
    assert.equal(pkg.disks[0]!.fileBytes, ova.vmdkBytes);
    assert.equal(pkg.totalFileBytes, ova.vmdkBytes);
    // The streamed bytes are the VMDK as tar extracts it.
    const out = join(dir, 'x');
    await mkdir(out);
    await run('tar', ['-xf', ova.path, '-C', out]);
    const { readFile } = await import('node:fs/promises');
    const expected = await readFile(join(out, 'tiny-disk1.vmdk'));
    const chunks: Buffer[] = [];
    for await (const c of pkg.openFile('tiny-disk1.vmdk')) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(expected));
    assert.equal(expected.subarray(0, 4).toString('latin1'), 'KDMV', 'a VMDK sparse header');
  });

  it('refuses what is not an OVA, naming the file and the problem', async () => {
    const notTar = join(dir, 'not.ova');
    await writeFile(notTar, 'hello'.repeat(200));
    const noOvf = join(dir, 'no-ovf.ova');
    await writeFile(join(dir, 'readme.txt'), 'x');
    await run('tar', ['-cf', noOvf, '-C', dir, 'readme.txt']);
    const truncated = join(dir, 'truncated.ova');
    const { readFile } = await import('node:fs/promises');
    await writeFile(truncated, (await readFile(ova.path)).subarray(0, 4096));
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'missing.ova'), /missing\.ova: no such file on the device/],
      [dir, /is a directory/],
      [notTar, /not a readable OVA \(tar\): bad tar header checksum/],
      [noOvf, /has no \.ovf descriptor/],
      [truncated, /runs past the end of the file/],
    ];
    for (const [path, re] of cases) {
      await assert.rejects(openOva(path), (err: unknown) => err instanceof OvaError && err.code === 'invalid_spec' && re.test(err.message), String(re));
    }
  });

  it('sim driver: deploys a VM with the OVF\'s shape, reporting progress while it reads the disks', async () => {
    const d = new SimDriver({ seed: 3, latencyMs: 0 });
    const pkg = await openOva(ova.path);
    const ctx = recordingContext();
    const vm = await d.deployVm(pkg, 'from-ova', ctx);
    assert.deepEqual([vm.name, vm.vcpus, vm.memoryMB, vm.powerState], ['from-ova', 2, 512, 'off']);
    assert.ok(Math.abs(vm.diskGB - (16 * 2 ** 20) / 1e9) < 0.01, `disk ${vm.diskGB} GB`);
    assert.ok((await d.listVms()).some((v) => v.id === vm.id));
    const copying = ctx.calls.filter((c) => c.message?.startsWith('copying'));
    assert.ok(copying.length >= 1, 'progress while copying the disk');
    const pcts = ctx.calls.map((c) => c.pct);
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b), 'progress never goes down');
    assert.equal(pcts.at(-1), 100);
    // Same name again: refused, nothing read.
    await rejectsWithCode(d.deployVm(pkg, 'from-ova', recordingContext()), 'invalid_spec');
    await d.close();
  });
});
