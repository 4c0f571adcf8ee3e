/**
 * The VM lifecycle end to end on the qemu driver: a real manager, a real `pallas-agent --driver
 * qemu`, real `qemu-system-x86_64` processes; REST with the live stream, then the `pallas` CLI.
 * After each power change QEMU is checked without the agent: its process found by scanning
 * /proc/<pid>/cmdline for the VM's folder, its QMP socket spoken to with raw `net` code
 * (`query-status`), its `-m`/`-smp` on the command line, and its disk with `qemu-img info`.
 *
 * Needs QEMU: skipped without it on a partial run, failed under CI and npm test (testkit's
 * `skipUnless`). Every QEMU the test started is
 * killed in `after`. KVM when /dev/kvm works, else TCG (`PALLAS_TEST_QEMU_ACCEL=tcg` forces it);
 * the guests are blank or a boot sector, so TCG costs little.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, TaskState, Vm } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, openEventStream, skipUnless, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type EventStream, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { qemuSkipReason } from '../../packages/agent/test/support/qemu-outside.js';
import { pallas } from './support/cli.js';

const QEMU = 'qemu-system-x86_64';
const accel = (process.env.PALLAS_TEST_QEMU_ACCEL || 'auto') as 'auto' | 'kvm' | 'tcg';

describe('VM lifecycle on the qemu driver, end to end', {
  skip: skipUnless(qemuSkipReason),
  timeout: 180_000,
}, () => {
  let manager: ManagerProcess;
  let admin: Api;
  let agent: Proc;
  let deviceId: string;
  const dirs = tempDir('pallas-e2e-qemu-');
  const cliConfig = join(dirs.path, 'cli');
  // Short and under /tmp, not $TMPDIR: QMP socket paths must fit in 107 bytes.
  let root: string | undefined;
  const qemuDir = () => join(root!, 'vms');
  const folder = (vmId: string) => join(qemuDir(), vmId);

  before(async () => {
    root = mkdtempSync('/tmp/pq-');
    writeFileSync(join(root, 'acpi-off.img'), ACPI_GUEST);
    manager = await startManagerProcess();
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const stateDir = join(dirs.path, 'agent');
    const config = join(dirs.path, 'agent.json');
    writeFileSync(config, JSON.stringify({ qemu: { accel, shutdownTimeoutMs: 20_000 } }));
    agent = startAgentProcess({
      managerUrl: manager.httpUrl, stateDir, token,
      args: ['--driver', 'qemu', '--qemu-dir', qemuDir(), '--config', config],
    });
    deviceId = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('online with its facts', async () => {
      const device = (await admin.get(`/api/v1/devices/${deviceId}`)).body;
      return device?.presence === 'online' && device.facts !== null && device;
    });
    const device = (await admin.get(`/api/v1/devices/${deviceId}`)).body;
    assert.equal(device.facts.hypervisor.kind, 'qemu', 'the agent runs the qemu driver');
    const login = await pallas(cliConfig, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await agent?.kill();
    if (root) killQemusUnder(root);
    await manager?.close();
    if (root) rmSync(root, { recursive: true, force: true });
    dirs.cleanup();
  });

  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  const final = (id: string) => waitFor(`task ${id} final`, async () => {
    const t = await task(id);
    return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
  }, { timeoutMs: 60_000 });
  /** Sends a change, waits for its task, and checks it succeeded and the stream showed each of its states in order. */
  const run = async (stream: EventStream, res: { status: number; body: Task }): Promise<Task> => {
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await final(res.body.id);
    assert.equal(done.state, 'succeeded', `${done.kind}: ${JSON.stringify(done.error)}\n${agent.output().slice(-2000)}`);
    await waitFor(`${done.kind} succeeded on the stream`, () => statesOn(stream, done.id).at(-1) === 'succeeded', { timeoutMs: 5_000 });
    // The device is online and idle: each task is marked sent as it is created (docs/tasks.md).
    assert.deepEqual(statesOn(stream, done.id), ['sent', 'running', 'succeeded'], `states of ${done.kind} ${done.id} on the stream`);
    return done;
  };

  it('through REST: create, on, off, update, on, shutdown, delete, each task on the live stream, QEMU checked from outside', async () => {
    const stream = await openEventStream(manager.httpUrl, admin.token!, { deviceId });
    try {
      const vms = `/api/v1/devices/${deviceId}/vms`;
      // The boot sector answers the ACPI power button, so `shutdown` can be checked for real.
      const bootImage = join(root!, 'acpi-off.img');
      const created = await run(stream, await admin.post(vms, { name: 'rest-vm', vcpus: 1, memoryMB: 64, diskGB: 1, bootImage }));
      const vmId = created.vmId!;
      assert.deepEqual([created.vm?.name, created.vm?.powerState], ['rest-vm', 'off']);
      const disk = join(folder(vmId), 'disk.qcow2');
      const info = qemuImgInfo(disk);
      assert.deepEqual([info?.format, info?.['virtual-size']], ['qcow2', 1_000_000_000]);
      assert.deepEqual(qemuPids(folder(vmId)), [], 'created powered off: no QEMU');

      const on = await run(stream, await admin.post(`${vms}/${vmId}/power`, { action: 'on' }));
      assert.equal(on.vm?.powerState, 'on');
      await assertRunning(folder(vmId), { memoryMB: 64, vcpus: 1, name: 'rest-vm' });
      await waitFor('the VM on in a vms event of the stream', () => stream.events.some((e) => e.type === 'vms' && e.vms.some((v) => v.id === vmId && v.powerState === 'on')), { timeoutMs: 5_000 });

      const off = await run(stream, await admin.post(`${vms}/${vmId}/power`, { action: 'off' }));
      assert.equal(off.vm?.powerState, 'off');
      assertStopped(folder(vmId));

      const update = await run(stream, await admin.patch(`${vms}/${vmId}`, { name: 'rest-vm-2', vcpus: 2, memoryMB: 128 }));
      assert.deepEqual([update.vm?.name, update.vm?.vcpus, update.vm?.memoryMB], ['rest-vm-2', 2, 128]);
      assert.deepEqual(qemuPids(folder(vmId)), [], 'an update while off starts nothing');

      await run(stream, await admin.post(`${vms}/${vmId}/power`, { action: 'on' }));
      await assertRunning(folder(vmId), { memoryMB: 128, vcpus: 2, name: 'rest-vm-2' });
      // Like any OS, the guest ignores the button until it has booted: wait until the firmware
      // has loaded the boot sector (it arms the button within microseconds then).
      const sock = join(folder(vmId), 'qmp.sock');
      await waitFor('the boot sector loaded', async () => (await rawQmp<string>(sock, 'human-monitor-command', { 'command-line': 'xp /1xh 0x7c00' })) === '0000000000007c00: 0xbafa\r\n', { timeoutMs: 15_000 });
      const shutdown = await run(stream, await admin.post(`${vms}/${vmId}/power`, { action: 'shutdown' }));
      assert.equal(shutdown.vm?.powerState, 'off');
      assertStopped(folder(vmId));

      await run(stream, await admin.delete(`${vms}/${vmId}`));
      assertDeleted(folder(vmId));
      await waitFor('VM gone from the inventory', async () => !(await admin.get<Vm[]>(vms)).body.some((v) => v.id === vmId));
    } finally {
      stream.close();
    }
  });

  it('through the CLI: create, power on (tasks watch/show), off, update, on, off, rm, exit 0 each', async () => {
    const cli = async (...args: string[]) => {
      const res = await pallas(cliConfig, args);
      assert.equal(res.code, 0, `pallas ${args.join(' ')}\n${res.stdout}\n${res.stderr}`);
      return res;
    };
    const json = async (...args: string[]): Promise<Task> => JSON.parse((await cli(...args, '--json')).stdout) as Task;

    const created = await json('vms', 'create', deviceId, '--name', 'cli-vm', '--vcpus', '1', '--memory', '96', '--disk', '1', '--wait');
    assert.equal(created.state, 'succeeded');
    const vmId = created.vmId!;
    assert.equal(qemuImgInfo(join(folder(vmId), 'disk.qcow2'))?.format, 'qcow2');

    // Without --wait: the task comes back at once; `tasks watch` follows it to the end.
    const on = await json('vms', 'power', deviceId, 'cli-vm', 'on');
    const watch = await cli('tasks', 'watch', on.id);
    assert.match(watch.stdout, /succeeded/);
    const show = await cli('tasks', 'show', on.id);
    assert.match(show.stdout, /succeeded/);
    await assertRunning(folder(vmId), { memoryMB: 96, vcpus: 1, name: 'cli-vm' });

    await cli('vms', 'power', deviceId, vmId, 'off', '--wait');
    assertStopped(folder(vmId));
    const updated = await json('vms', 'update', deviceId, vmId, '--name', 'cli-vm-2', '--memory', '128', '--vcpus', '2', '--wait');
    assert.deepEqual([updated.vm?.name, updated.vm?.memoryMB, updated.vm?.vcpus], ['cli-vm-2', 128, 2]);
    await cli('vms', 'power', deviceId, 'cli-vm-2', 'on', '--wait');
    await assertRunning(folder(vmId), { memoryMB: 128, vcpus: 2, name: 'cli-vm-2' });
    await cli('vms', 'power', deviceId, vmId, 'off', '--wait');
    assertStopped(folder(vmId));
    await cli('vms', 'rm', deviceId, vmId, '--yes', '--wait');
    assertDeleted(folder(vmId));

    const page = JSON.parse((await cli('tasks', 'ls', '--device', deviceId, '--json')).stdout) as { items: Task[] };
    const mine = page.items.filter((t) => t.vmId === vmId).reverse();
    assert.deepEqual(mine.map((t) => `${t.kind}:${t.state}`), ['vm.create', 'vm.power', 'vm.power', 'vm.update', 'vm.power', 'vm.power', 'vm.delete'].map((k) => `${k}:succeeded`));
  });
});

/** The task's states as the stream showed them, repeats (progress) collapsed. */
function statesOn(stream: EventStream, taskId: string): TaskState[] {
  const states: TaskState[] = [];
  for (const e of stream.events) if (e.type === 'task' && e.task.id === taskId && states.at(-1) !== e.task.state) states.push(e.task.state);
  return states;
}

/** Exactly one live QEMU serves the folder, its pid is the pid file's, QMP says running, and its command line has the spec. */
async function assertRunning(folder: string, spec: { memoryMB: number; vcpus: number; name: string }): Promise<void> {
  const pids = qemuPids(folder);
  assert.equal(pids.length, 1, `one QEMU for ${folder}: ${pids.join(', ')}`);
  const pid = pids[0]!;
  const pidFile = join(folder, 'qemu.pid');
  // QEMU runs with -daemonize -pidfile: its parent exits (and the driver reports the VM on)
  // only after the pid file is written, so a running VM always has one.
  assert.ok(existsSync(pidFile), `${pidFile} exists while the VM runs`);
  assert.equal(Number(readFileSync(pidFile, 'utf8')), pid, 'the pid file names the QEMU found in /proc');
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const arg = (flag: string) => argv[argv.indexOf(flag) + 1];
  assert.equal(arg('-m'), `${spec.memoryMB}M`, `-m in ${argv.join(' ')}`);
  assert.equal(arg('-smp'), String(spec.vcpus));
  assert.equal(arg('-name'), `guest=${spec.name}`);
  const status = await rawQmp<{ status: string; running: boolean }>(join(folder, 'qmp.sock'), 'query-status');
  assert.deepEqual([status.status, status.running], ['running', true]);
}

/** No live QEMU serves the folder any more, and its monitor socket no longer answers. */
function assertStopped(folder: string): void {
  assert.deepEqual(qemuPids(folder), [], `no QEMU left for ${folder}`);
  assert.equal(existsSync(join(folder, 'qemu.pid')), false, 'the pid file is gone');
}

function assertDeleted(folder: string): void {
  assert.deepEqual(qemuPids(folder), []);
  assert.equal(qemuImgInfo(join(folder, 'disk.qcow2')), undefined, 'qemu-img finds no disk');
  assert.equal(existsSync(folder), false, `${folder} is gone`);
}

/** `qemu-img info` of a disk, or undefined when it fails (no such file). */
function qemuImgInfo(path: string): Record<string, unknown> | undefined {
  const res = spawnSync('qemu-img', ['info', '--output=json', '-U', path], { encoding: 'utf8' });
  return res.status === 0 ? (JSON.parse(res.stdout) as Record<string, unknown>) : undefined;
}

/** Pids of live (not zombie: daemonized QEMUs may go unreaped here) QEMUs whose command line names the folder. */
function qemuPids(folder: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (!argv[0]?.endsWith(QEMU) || !argv.some((a) => a.includes(`${folder}/`))) continue;
      if (/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      pids.push(Number(p));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** Kills every QEMU whose command line names `dir`: all the ones the test started. */
function killQemusUnder(dir: string): void {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.split('\0')[0]!.endsWith(QEMU) && cmd.includes(dir)) process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}

/** One QMP command over the socket, without Pallas: greeting, capabilities, command. */
function rawQmp<T = Record<string, unknown>>(path: string, command: string, args?: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP answer on ${path}`)), 5_000);
    let buffer = '';
    let step = 0;
    socket.setEncoding('utf8');
    socket.on('error', (err) => (clearTimeout(timer), reject(err)));
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

/**
 * A 1 MiB raw disk whose boot sector answers the ACPI power button like an OS (the same one as
 * packages/agent/test/driver-qemu.test.ts, which lists its instructions): it enables the PIIX4
 * power-button event, polls until the button is pressed, then writes SLP_EN with S5 to PM1_CNT.
 */
const ACPI_GUEST = (() => {
  const code = 'fabaf80c66b8400b008066efbafc0c66ed83e0c089c389da83c202b80001ef89daeda9000174f889da83c204b80020eff4ebfd';
  const disk = Buffer.alloc(1024 * 1024); // SeaBIOS cannot read a disk of one sector
  disk.write(code, 0, 'hex');
  disk.writeUInt16LE(0xaa55, 510);
  return disk;
})();
