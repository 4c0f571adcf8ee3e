/**
 * Looking at QEMU without the driver, for tests of OVA deploys on the qemu driver: the process
 * that serves a VM's folder and its command line, read from /proc; and killing every QEMU a
 * test started (they daemonize, so they outlive the agent that started them).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { TOOLS, missingToolsReason } from '@pallas/testkit';

export const QEMU = 'qemu-system-x86_64';

/** What is missing to run VMs and build OVAs here, or undefined (for testkit's `skipUnless`). */
export const qemuSkipReason: string | undefined = missingToolsReason([TOOLS.qemu, TOOLS.qemuImg, TOOLS.tar]);

/** The command line of every live `qemu-system-*` process that mentions `text`, by pid. */
export function qemusMentioning(text: string): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (/^\d+ \(.*\) [ZX]/s.test(stat)) continue; // a zombie an init did not reap
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (/qemu-system-/.test(argv[0] ?? '') && argv.some((a) => a.includes(text))) found.set(Number(p), argv);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

/** The value after `flag` on a command line (`-m` → `256M`). */
export function argAfter(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i === -1 ? undefined : argv[i + 1];
}

/** Every process whose command line mentions `text` and starts with `program` (qemu-img left behind?). */
export function processesOf(program: string, text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (/^\d+ \(.*\) [ZX]/s.test(stat)) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if ((argv[0] ?? '').endsWith(program) && argv.some((a) => a.includes(text))) pids.push(Number(p));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

export function killQemusUnder(dir: string): void {
  for (const pid of qemusMentioning(dir).keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
