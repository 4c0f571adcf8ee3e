import { execFile } from 'node:child_process';
import { open, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { VmPaths, VmRecord } from './vm-store.js';

/**
 * QEMU as processes: the command line a VM runs with, starting it detached, and telling
 * whether the process behind a pid file is still that VM's QEMU. Linux only (`/proc`).
 */

export type Accel = 'kvm' | 'tcg';

/** QEMU option values escape a comma by doubling it (`file=a,,b` is the file `a,b`). */
function opt(value: string): string {
  return value.replaceAll(',', ',,');
}

/**
 * The VM's command line, without the binary. `-daemonize` makes QEMU fork, set up everything
 * (disks opened, monitor socket listening, pid file written) and only then let the parent
 * exit, with status 0 or with the error on stderr: so a VM that started is ready for QMP,
 * and it runs in its own session, unaffected when the agent stops or restarts.
 */
export function qemuArgs(vm: VmRecord, paths: VmPaths, accel: Accel): string[] {
  const args = [
    '-daemonize',
    '-pidfile', paths.pid,
    '-qmp', `unix:${opt(paths.qmp)},server=on,wait=off`,
    '-display', 'none',
    '-name', `guest=${opt(vm.name)}`,
    '-accel', accel,
    '-m', `${vm.memoryMB}M`,
    '-smp', String(vm.vcpus),
    '-drive', `file=${opt(paths.disk)},format=qcow2,if=none,id=disk0`,
  ];
  const image = vm.bootImage;
  if (image === undefined) {
    args.push('-device', 'virtio-blk-pci,drive=disk0,bootindex=0');
  } else if (image.toLowerCase().endsWith('.iso')) {
    // What `-cdrom` expands to, spelled out to escape the path. The disk boots first: blank, the
    // firmware falls through to the CD (install); once installed, the guest boots from its disk.
    args.push('-device', 'virtio-blk-pci,drive=disk0,bootindex=0');
    args.push('-drive', `file=${opt(image)},media=cdrom,readonly=on,if=none,id=cd0`, '-device', 'ide-cd,drive=cd0,bootindex=1');
  } else {
    // A disk image to boot from, as a second drive that boots first. `snapshot=on` keeps its
    // writes in a temporary overlay: one image can serve several VMs and is never modified.
    const format = /\.qcow2$/i.test(image) ? 'qcow2' : 'raw';
    args.push('-device', 'virtio-blk-pci,drive=disk0,bootindex=1');
    args.push('-drive', `file=${opt(image)},format=${format},snapshot=on,if=none,id=boot0`, '-device', 'virtio-blk-pci,drive=boot0,bootindex=0');
  }
  // Further disks (OVA deploys): after the first, never booted from.
  (vm.extraDisks ?? []).forEach((file, i) => {
    const id = `disk${i + 1}`;
    args.push('-drive', `file=${opt(join(paths.dir, file))},format=qcow2,if=none,id=${id}`, '-device', `virtio-blk-pci,drive=${id}`);
  });
  args.push('-nic', vm.network === 'user' ? 'user,model=virtio-net-pci' : `bridge,br=${opt(vm.network)},model=virtio-net-pci`);
  return args;
}

/** Runs a program (no shell); rejects with its stderr in the message. */
export function run(file: string, args: string[], options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: options.timeoutMs ?? 60_000, signal: options.signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const detail = stderr.trim() || err.message;
      reject(Object.assign(new Error(`${basename(file)} failed: ${detail}`, { cause: err }), { code: (err as NodeJS.ErrnoException).code }));
    });
  });
}

/** `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)` → version and package build. */
export async function qemuVersion(binary: string): Promise<{ version: string; build?: string }> {
  const out = await run(binary, ['--version'], { timeoutMs: 10_000 });
  const m = /version\s+(\S+)(?:\s+\(([^)]*)\))?/.exec(out);
  if (!m) throw new Error(`cannot read the version from "${out.split('\n')[0]}"`);
  return m[2] ? { version: m[1]!.slice(0, 64), build: m[2].slice(0, 64) } : { version: m[1]!.slice(0, 64) };
}

/** KVM needs /dev/kvm openable read-write by us; it can exist and still be refused (containers, groups). */
export async function kvmUsable(): Promise<boolean> {
  try {
    const fh = await open('/dev/kvm', 'r+');
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The pid of this VM's QEMU if it is running: the pid file names a live process (not a
 * zombie, which an init that does not reap leaves behind) whose command line is a
 * `qemu-system-*` serving this VM's QMP socket. A pid reused by another program is not it.
 */
export async function runningQemu(paths: VmPaths): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(paths.pid, 'utf8'), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!(await processAlive(pid))) return undefined;
  let argv: string[];
  try {
    argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return undefined;
  }
  const isQemu = basename(argv[0] ?? '').startsWith('qemu-system');
  const servesSocket = argv.some((a) => a.startsWith(`unix:${opt(paths.qmp)},`));
  return isQemu && servesSocket ? pid : undefined;
}

/** Alive: /proc has it and it is not a zombie (state Z) or dead (X). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S …": comm may hold spaces and parentheses, so look after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X' && state !== '';
  } catch {
    return false;
  }
}

/**
 * Waits until the process is gone, polling (it is not our child: it outlived its parent on
 * purpose, so there is no exit event to wait for). Resolves false after `timeoutMs`.
 * `onTick` runs at every poll, with the elapsed time; rejects with the signal's reason.
 */
export async function waitForExit(pid: number, timeoutMs: number, signal: AbortSignal, onTick?: (elapsedMs: number) => void): Promise<boolean> {
  const start = performance.now();
  for (;;) {
    signal.throwIfAborted();
    if (!(await processAlive(pid))) return true;
    const elapsed = performance.now() - start;
    if (elapsed >= timeoutMs) return false;
    onTick?.(elapsed);
    await sleep(Math.min(100, timeoutMs - elapsed), signal);
  }
}

/** Removes what a QEMU that is gone left behind (it removes its pid file itself on a clean exit). */
export async function removeRuntimeFiles(paths: VmPaths): Promise<void> {
  await rm(paths.pid, { force: true });
  await rm(paths.qmp, { force: true });
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
