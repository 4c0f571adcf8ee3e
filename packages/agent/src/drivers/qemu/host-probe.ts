import { readFile, readdir, statfs } from 'node:fs/promises';
import os from 'node:os';

/** What the qemu driver reads off the machine it runs on: networks, disk space, CPUs, memory. */

/** QEMU's own NAT (slirp): always there, needs nothing from the host. */
export const USER_NETWORK = 'user';

/**
 * `user`, then the Linux bridges (a bridge has `/sys/class/net/<name>/bridge`), sorted, so that
 * the first network (the default for a VM) is the one that works everywhere.
 */
export async function hostNetworks(): Promise<string[]> {
  let names: string[] = [];
  try {
    names = await readdir('/sys/class/net');
  } catch {
    /* no sysfs: only user networking */
  }
  const bridges: string[] = [];
  await Promise.all(
    names.map(async (name) => {
      try {
        await readdir(`/sys/class/net/${name}/bridge`);
        bridges.push(name);
      } catch {
        /* not a bridge */
      }
    }),
  );
  return [USER_NETWORK, ...bridges.sort()];
}

/** Capacity and free space (for us: `bavail`, what an unprivileged writer gets) in bytes. */
export async function diskSpace(dir: string): Promise<{ capacity: number; free: number }> {
  const s = await statfs(dir);
  return { capacity: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

export function cpuInfo(): { model: string; cores: number; mhz?: number } {
  const cpus = os.cpus();
  const first = cpus[0];
  const cores = cpus.length || os.availableParallelism();
  if (!first) return { model: 'unknown', cores };
  return first.speed > 0 ? { model: first.model.trim().slice(0, 255), cores, mhz: first.speed } : { model: first.model.trim().slice(0, 255), cores };
}

export const MB = 1024 * 1024;

/** Total and available memory in MB (`os.freemem()` is MemAvailable on Linux: page cache counts as free). */
export function memoryInfo(): { totalMB: number; freeMB: number } {
  return { totalMB: Math.floor(os.totalmem() / MB), freeMB: Math.floor(os.freemem() / MB) };
}

/** The hardware model from DMI (`/sys/class/dmi/id/product_name`), when the firmware tells. */
export async function hardwareModel(): Promise<string | undefined> {
  try {
    const name = (await readFile('/sys/class/dmi/id/product_name', 'utf8')).trim();
    return name === '' ? undefined : name.slice(0, 255);
  } catch {
    return undefined;
  }
}
