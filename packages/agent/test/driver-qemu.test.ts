/**
 * The qemu driver against real `qemu-system-x86_64` processes (KVM when /dev/kvm is usable,
 * else TCG). Besides the contract suite, the checks here look at QEMU without the driver: the
 * pid file, /proc/<pid>/cmdline, the QMP socket spoken to with raw `net` code, and
 * `qemu-img info`. Every QEMU started under the test's temp dir is killed in `after`.
 *
 * A missing QEMU skips the file on a partial run and fails it under CI and npm test, which
 * install QEMU (testkit's `skipUnless`, docs/testing.md).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HostFacts, PALLAS_VERSION, checker, type VmSpec } from '@pallas/protocol';
import { createDriver } from '../src/drivers/index.js';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.js';
import { skipUnless } from '@pallas/testkit';
import { driverContract, recordingContext, rejectsWithCode } from './driver-contract.js';
import { qemuSkipReason } from './support/qemu-outside.js';

const QEMU = 'qemu-system-x86_64';
const QEMU_IMG = 'qemu-img';
/** `PALLAS_TEST_QEMU_ACCEL=tcg` runs the suite without KVM even where /dev/kvm works. Default auto. */
const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';
const skip = skipUnless(qemuSkipReason);

// Short: QMP socket paths must fit in 107 bytes.
const root = await mkdtemp(join(tmpdir(), 'pq-'));
let dirs = 0;
const newDir = (): string => join(root, `d${dirs++}`);
const ctx = () => recordingContext();
const tiny = (name: string, extra: Partial<VmSpec> = {}): VmSpec => ({ name, vcpus: 1, memoryMB: 64, diskGB: 1, ...extra });

after(async () => {
  await killQemusUnder(root);
  await rm(root, { recursive: true, force: true });
});

if (skip) {
  it('qemu driver', { skip }, () => undefined);
} else {
  // Blank guests ignore the ACPI power button, so shutdown fails after a short wait.
  driverContract('qemu', () => new QemuDriver({ dir: join(root, 'contract'), shutdownTimeoutMs: 800, accel }), { timeoutMs: 60_000, blankGuestShutsDown: false });

  describe('qemu driver, checked from outside', { timeout: 60_000 }, () => {
    it('runs a VM as a real QEMU with its qcow2 disk, controlled over its QMP socket, and stops it', async () => {
      const dir = newDir();
      const d = new QemuDriver({ dir, accel });
      const vm = await d.createVm(tiny('outside-1'), ctx());
      const folder = join(dir, vm.id);
      const record = JSON.parse(await readFile(join(folder, 'vm.json'), 'utf8'));
      assert.deepEqual(
        { ...record, createdAt: typeof record.createdAt },
        { id: vm.id, name: 'outside-1', vcpus: 1, memoryMB: 64, diskGB: 1, network: 'user', createdAt: 'string' },
      );
      const info = JSON.parse(execFileSync(QEMU_IMG, ['info', '--output=json', join(folder, 'disk.qcow2')], { encoding: 'utf8' }));
      assert.equal(info.format, 'qcow2');
      assert.equal(info['virtual-size'], 1_000_000_000);
      assert.ok(info['actual-size'] < 10_000_000, `sparse: ${info['actual-size']} bytes on disk`);

      assert.equal((await d.powerVm(vm.id, 'on', ctx())).powerState, 'on');
      const pid = Number(await readFile(join(folder, 'qemu.pid'), 'utf8'));
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      assert.match(argv[0]!, /qemu-system-x86_64$/);
      assert.ok(argv.some((a) => a.includes('outside-1')), `the VM's name is on the command line: ${argv.join(' ')}`);
      assert.equal((await rawQmp(join(folder, 'qmp.sock'), 'query-status')).status, 'running');
      const kvm = accel === 'kvm' || (accel === 'auto' && kvmOpens());
      assert.equal((await rawQmp(join(folder, 'qmp.sock'), 'query-kvm')).enabled, kvm, `KVM ${kvm ? 'used' : 'not used'} (accel ${accel})`);

      assert.equal((await d.powerVm(vm.id, 'off', ctx())).powerState, 'off');
      assert.equal(alive(pid), false, 'the QEMU process is gone');
      assert.equal(existsSync(join(folder, 'qemu.pid')), false);
      await d.deleteVm(vm.id, ctx());
      assert.equal(existsSync(folder), false, 'the folder and its disk are gone');
      await d.close();
    });

    it('leaves VMs running on close; a new driver on the same folder re-attaches and sees them on', async () => {
      const dir = newDir();
      const first = new QemuDriver({ dir, accel });
      const vm = await first.createVm(tiny('survivor'), ctx());
      await first.powerVm(vm.id, 'on', ctx());
      const pid = Number(await readFile(join(dir, vm.id, 'qemu.pid'), 'utf8'));
      await first.close();
      await rejectsWithCode(first.listVms(), 'unavailable');
      assert.ok(alive(pid), 'close() leaves the VM running');
      assert.equal((await rawQmp(join(dir, vm.id, 'qmp.sock'), 'query-status')).status, 'running');

      const second = new QemuDriver({ dir, accel }); // the agent, restarted
      assert.deepEqual(await second.listVms(), [{ ...vm, powerState: 'on' }]);
      // Paused behind the driver's back: suspended, and `on` resumes it (the same process).
      await rawQmp(join(dir, vm.id, 'qmp.sock'), 'stop');
      assert.equal((await second.listVms())[0]!.powerState, 'suspended');
      await rejectsWithCode(second.powerVm(vm.id, 'shutdown', ctx()), 'invalid_state');
      assert.equal((await second.powerVm(vm.id, 'on', ctx())).powerState, 'on');
      assert.equal((await rawQmp(join(dir, vm.id, 'qmp.sock'), 'query-status')).status, 'running');
      assert.equal(Number(await readFile(join(dir, vm.id, 'qemu.pid'), 'utf8')), pid);

      // Killed behind its back: off at the next look, and it powers on again.
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !alive(pid));
      assert.equal((await second.listVms())[0]!.powerState, 'off');
      assert.equal((await second.powerVm(vm.id, 'on', ctx())).powerState, 'on');
      await second.powerVm(vm.id, 'off', ctx());
      await second.close();
    });

    it('refuses to guess the state of a VM whose monitor is taken, and still powers it off', async () => {
      const dir = newDir();
      const d = new QemuDriver({ dir, accel, qmpTimeoutMs: 500 });
      const vm = await d.createVm(tiny('busy-monitor'), ctx());
      await d.powerVm(vm.id, 'on', ctx());
      const pid = Number(await readFile(join(dir, vm.id, 'qemu.pid'), 'utf8'));
      // QEMU's monitor serves one client: hold it, as an operator's socat would.
      const holder = createConnection(join(dir, vm.id, 'qmp.sock'));
      await new Promise((resolve) => holder.once('data', resolve));
      try {
        await assert.rejects(d.listVms(), (err: Error & { code?: string }) => err.code === 'host_error' && /busy-monitor.*does not answer/s.test(err.message));
        assert.equal((await d.powerVm(vm.id, 'off', ctx())).powerState, 'off');
        assert.equal(alive(pid), false);
      } finally {
        holder.destroy();
      }
      await d.close();
    });

    it('fails a shutdown the guest ignores after shutdownTimeoutMs, saying so, and leaves the VM on', async () => {
      const d = new QemuDriver({ dir: newDir(), shutdownTimeoutMs: 600, accel });
      const vm = await d.createVm(tiny('no-os'), ctx());
      await d.powerVm(vm.id, 'on', ctx());
      const c = ctx();
      await assert.rejects(d.powerVm(vm.id, 'shutdown', c), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'host_error');
        assert.match(err.message, /no-os.*did not shut down within 1 s.*still on/s);
        return true;
      });
      assert.ok(c.calls.length > 0 && c.calls.every((p) => p.pct < 100));
      assert.equal((await d.listVms())[0]!.powerState, 'on');
      // An abort while waiting for the guest rejects with the reason, at once.
      const reason = new Error('operator cancelled');
      const slow = new QemuDriver({ dir: newDir(), accel });
      const vm2 = await slow.createVm(tiny('no-os-2'), ctx());
      await slow.powerVm(vm2.id, 'on', ctx());
      const t = performance.now();
      await assert.rejects(slow.powerVm(vm2.id, 'shutdown', recordingContext(AbortSignal.timeout(300))), (err) => err instanceof Error && err.name === 'TimeoutError');
      assert.ok(performance.now() - t < 5_000);
      await assert.rejects(slow.powerVm(vm2.id, 'off', recordingContext(AbortSignal.abort(reason))), (err) => err === reason);
      await slow.powerVm(vm2.id, 'off', ctx());
      await d.powerVm(vm.id, 'off', ctx());
      await Promise.all([d.close(), slow.close()]);
    });

    it('shuts down a guest that answers the ACPI power button, booted from a disk image given as bootImage', async () => {
      const image = join(root, 'acpi-off.img');
      await writeFile(image, ACPI_GUEST);
      const dir = newDir();
      const d = new QemuDriver({ dir, shutdownTimeoutMs: 20_000, accel });
      const vm = await d.createVm(tiny('acpi-guest', { bootImage: image }), ctx());
      await d.powerVm(vm.id, 'on', ctx());
      const pid = Number(await readFile(join(dir, vm.id, 'qemu.pid'), 'utf8'));
      // Like any OS, the guest ignores the button until it has booted: wait until the firmware
      // has loaded its boot sector (then it arms the button within microseconds).
      await waitForAsync(async () => (await rawQmp<string>(join(dir, vm.id, 'qmp.sock'), 'human-monitor-command', { 'command-line': 'xp /1xh 0x7c00' })) === '0000000000007c00: 0xbafa\r\n', 15_000);
      const c = ctx();
      assert.equal((await d.powerVm(vm.id, 'shutdown', c)).powerState, 'off');
      assert.equal(c.calls.at(-1)?.pct, 100);
      assert.equal(alive(pid), false, 'QEMU exited when the guest powered off');
      assert.equal((await readFile(image)).equals(ACPI_GUEST), true, 'the boot image was not written to (snapshot=on)');
      await d.close();
    });

    it('checks specs against the host: networks, cores, memory, boot image, free space', async () => {
      const d = new QemuDriver({ dir: newDir(), accel });
      const facts = await d.hostFacts();
      await rejectsWithCode(d.createVm(tiny('net', { network: 'br-nope' }), ctx()), 'invalid_spec');
      await rejectsWithCode(d.createVm(tiny('wide', { vcpus: facts.cpu.cores + 1 }), ctx()), 'invalid_spec');
      await rejectsWithCode(d.createVm(tiny('big', { memoryMB: facts.memory.totalMB + 1 }), ctx()), 'invalid_spec');
      await rejectsWithCode(d.createVm(tiny('rel', { bootImage: 'images/x.iso' }), ctx()), 'invalid_spec');
      await rejectsWithCode(d.createVm(tiny('gone', { bootImage: '/nonexistent/x.iso' }), ctx()), 'invalid_spec');
      const freeGB = facts.datastores[0]!.freeGB;
      if (freeGB < 65_000) await rejectsWithCode(d.createVm(tiny('huge', { diskGB: 65_536 }), ctx()), 'no_space');
      assert.deepEqual(await d.listVms(), []);
      await d.close();
    });

    it('gives new ids, never reused, in creation order, also across driver instances', async () => {
      const dir = newDir();
      const d = new QemuDriver({ dir, accel });
      const a = await d.createVm(tiny('a'), ctx());
      const b = await d.createVm(tiny('b'), ctx());
      await d.deleteVm(b.id, ctx());
      const c = await d.createVm(tiny('c'), ctx());
      await d.close();
      const again = new QemuDriver({ dir, accel });
      const e = await again.createVm(tiny('e'), ctx());
      assert.equal(new Set([a.id, b.id, c.id, e.id]).size, 4);
      assert.deepEqual((await again.listVms()).map((v) => v.name), ['a', 'c', 'e']);
      await again.close();
    });

    it('reports host facts valid against the protocol, with the QEMU version and the folder as datastore', async () => {
      const dir = newDir();
      const d = (await createDriver('qemu', { dir, accel })) as QemuDriver;
      assert.equal(d.kind, 'qemu');
      const facts = await d.hostFacts();
      const full = { ...facts, agentVersion: PALLAS_VERSION, agentUptimeSec: 0 };
      const check = checker(HostFacts);
      assert.ok(check.check(full), check.explain(full));
      assert.equal(facts.hypervisor.kind, 'qemu');
      const version = /version (\S+)/.exec(execFileSync(QEMU, ['--version'], { encoding: 'utf8' }))![1];
      assert.equal(facts.hypervisor.version, version);
      assert.equal(facts.hostname, os.hostname());
      assert.equal(facts.cpu.cores, os.cpus().length);
      assert.equal(facts.networks[0], 'user');
      assert.equal(facts.datastores.length, 1);
      assert.equal(facts.datastores[0]!.name, dir);
      assert.ok(facts.datastores[0]!.capacityGB >= facts.datastores[0]!.freeGB);
      await d.close();
    });
  });
}

/**
 * A 1 MiB raw disk whose boot sector answers the ACPI power button, the way an OS does: it
 * reads the PIIX4 power-management I/O base from PCI config space (00:01.3, register 0x40),
 * enables the power-button event (PM1_EN bit 8), polls PM1_STS until the button was pressed,
 * then writes SLP_EN with sleep type 0 to PM1_CNT, which QEMU takes as a guest power-off.
 * Hand-assembled (16-bit real mode), listed with its instructions:
 */
const ACPI_GUEST = (() => {
  const code = [
    'fa', //                 cli
    'baf80c', //             mov  $0xcf8, %dx
    '66b8400b0080', //       mov  $0x80000b40, %eax     (bus 0, dev 1, fn 3, reg 0x40)
    '66ef', //               out  %eax, %dx
    'bafc0c', //             mov  $0xcfc, %dx
    '66ed', //               in   %dx, %eax
    '83e0c0', //             and  $0xffc0, %ax          PM base
    '89c3', //               mov  %ax, %bx
    '89da', '83c202', //     mov %bx, %dx; add $2, %dx  PM1_EN
    'b80001', 'ef', //       mov $0x100, %ax; out %ax, %dx   power button enabled
    '89da', 'ed', //         1: mov %bx, %dx; in %dx, %ax    PM1_STS
    'a90001', '74f8', //     test $0x100, %ax; jz 1b
    '89da', '83c204', //     mov %bx, %dx; add $4, %dx  PM1_CNT
    'b80020', 'ef', //       mov $0x2000, %ax; out %ax, %dx  SLP_EN, S5
    'f4', 'ebfd', //         2: hlt; jmp 2b
  ].join('');
  const disk = Buffer.alloc(1024 * 1024); // SeaBIOS cannot read a disk of one sector
  disk.write(code, 0, 'hex');
  disk.writeUInt16LE(0xaa55, 510);
  return disk;
})();

/** One QMP command over the socket, without the driver's client: greeting, capabilities, command. */
function rawQmp<T = Record<string, unknown>>(path: string, command: string, args?: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP answer on ${path}`)), 5_000);
    let buffer = '';
    let step = 0;
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (step === 0 && 'QMP' in msg) socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`), (step = 1);
        else if (step === 1 && 'return' in msg) socket.write(`${JSON.stringify({ execute: command, arguments: args })}\n`), (step = 2);
        else if (step === 2 && ('return' in msg || 'error' in msg)) {
          clearTimeout(timer);
          socket.end();
          if ('error' in msg) reject(new Error(`QMP ${command}: ${JSON.stringify(msg.error)}`));
          else resolve(msg.return);
        }
      }
    });
  });
}

function kvmOpens(): boolean {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie (the sandbox's init may not reap QEMUs that daemonized). */
function alive(pid: number): boolean {
  try {
    const stat = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills every QEMU the tests started: by the pid files under `dir`, then any whose command line names `dir`. */
async function killQemusUnder(dir: string): Promise<void> {
  const pids = new Set<number>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name === 'qemu.pid') pids.add(Number(await readFile(join(d, e.name), 'utf8').catch(() => '')));
    }
  };
  await walk(dir);
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith(QEMU) || cmd.includes(`/${QEMU}\0`)) if (cmd.includes(dir)) pids.add(Number(p));
  }
  for (const pid of pids) {
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
