import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';

/**
 * The qemu driver's directory: the only place VM definitions live, so that a restarted agent
 * (or a new driver instance) finds every VM again.
 *
 * ```
 * <dir>/next-id            next VM number (ids are never reused, even after a delete)
 * <dir>/vm-7/vm.json       the definition (VmRecord)
 * <dir>/vm-7/disk.qcow2    the first disk
 * <dir>/vm-7/disk-2.qcow2  further disks (OVA deploys with several disks; `extraDisks`)
 * <dir>/vm-7/qmp.sock      QEMU's monitor socket, while it runs
 * <dir>/vm-7/qemu.pid      QEMU's pid, while it runs
 * <dir>/.new-vm-7-…/       a VM being created (renamed to vm-7 when complete)
 * <dir>/.del-vm-7-…/       a VM being deleted
 * ```
 * Folders whose name starts with a dot are never listed, so a half-made or half-deleted VM
 * never shows.
 */

/** What `vm.json` holds. */
export interface VmRecord {
  id: string;
  name: string;
  vcpus: number;
  memoryMB: number;
  diskGB: number;
  /** `user` or a Linux bridge. */
  network: string;
  /** Absolute path of an ISO (as a CD-ROM) or disk image (as a second, copy-on-write drive). */
  bootImage?: string;
  /**
   * Disks after `disk.qcow2`, as file names in the VM's folder (`disk-2.qcow2`, …), attached in
   * this order. Only a VM deployed from an OVA with several disks has them.
   */
  extraDisks?: string[];
  /** ISO 8601; with the id's number, the creation order. */
  createdAt: string;
}

export interface VmPaths {
  dir: string;
  record: string;
  disk: string;
  qmp: string;
  pid: string;
}

export function vmPaths(vmDir: string): VmPaths {
  return { dir: vmDir, record: join(vmDir, 'vm.json'), disk: join(vmDir, 'disk.qcow2'), qmp: join(vmDir, 'qmp.sock'), pid: join(vmDir, 'qemu.pid') };
}

const ID = /^vm-(\d+)$/;
/** An extra disk's file name: a plain name in the VM's folder, never a path elsewhere. */
const EXTRA_DISK = /^disk-\d+\.qcow2$/;

/** The file name of the VM's disk number `n` (1-based): `disk.qcow2`, then `disk-2.qcow2`, … */
export function diskFileName(n: number): string {
  return n === 1 ? 'disk.qcow2' : `disk-${n}.qcow2`;
}
/** An id in a VM folder's name, also while staged or being deleted (`.new-vm-7-1a2b3c4d`). */
const ID_IN_FOLDER = /^(?:\.(?:new|del)-)?vm-(\d+)(?:-[0-9a-f]+)?$/;

export class VmStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
  }

  paths(id: string): VmPaths {
    return vmPaths(join(this.dir, id));
  }

  /** Every complete VM, in creation order. A folder with a missing or unreadable vm.json is skipped. */
  async list(): Promise<VmRecord[]> {
    const names = (await readdir(this.dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    const records = await Promise.all(names.map((name) => this.read(name)));
    return records.filter((r): r is VmRecord => r !== undefined).sort(creationOrder);
  }

  /** The VM's record, or undefined when there is no such VM (or its vm.json is unusable). */
  async read(id: string): Promise<VmRecord | undefined> {
    if (id.startsWith('.') || id.includes('/') || id === '' || id === '..') return undefined;
    let text: string;
    try {
      text = await readFile(this.paths(id).record, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const r = JSON.parse(text) as VmRecord;
      // The folder name is the id: a copied folder must not claim another VM's id.
      return isRecord(r) && r.id === id ? r : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes vm.json atomically (a crash leaves the old definition or the new one), in place or in a staged folder. */
  async write(record: VmRecord, where: VmPaths = this.paths(record.id)): Promise<void> {
    await writeFileAtomic(where.record, `${JSON.stringify(record, null, 2)}\n`, 0o640);
  }

  /** Takes the next id: max of the counter and the ids in use, then moves the counter past it. */
  async allocateId(): Promise<string> {
    const counterPath = join(this.dir, 'next-id');
    let next = 1;
    try {
      next = Math.max(next, Number.parseInt(await readFile(counterPath, 'utf8'), 10) || 1);
    } catch {
      /* first VM */
    }
    for (const name of await readdir(this.dir)) {
      const n = ID_IN_FOLDER.exec(name)?.[1];
      if (n !== undefined) next = Math.max(next, Number(n) + 1);
    }
    await writeFileAtomic(counterPath, `${next + 1}\n`, 0o640);
    return `vm-${next}`;
  }

  /** A folder to build a new VM in, outside the listing until `commit`. */
  async stage(id: string): Promise<VmPaths> {
    const dir = join(this.dir, `.new-${id}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o750 });
    return vmPaths(dir);
  }

  /** Makes a staged VM visible; fails (ENOTEMPTY/EEXIST) if another process took the id. */
  async commit(staged: VmPaths, id: string): Promise<void> {
    await rename(staged.dir, join(this.dir, id));
  }

  /** Removes a VM's folder: first out of the listing (rename), then from the disk. */
  async remove(id: string): Promise<void> {
    const gone = join(this.dir, `.del-${id}-${randomBytes(4).toString('hex')}`);
    await rename(join(this.dir, id), gone);
    await rm(gone, { recursive: true, force: true });
  }

  async discard(staged: VmPaths): Promise<void> {
    await rm(staged.dir, { recursive: true, force: true });
  }
}

function isRecord(r: unknown): r is VmRecord {
  if (typeof r !== 'object' || r === null) return false;
  const v = r as Record<string, unknown>;
  return (
    typeof v.id === 'string' &&
    typeof v.name === 'string' &&
    v.name.length > 0 &&
    Number.isInteger(v.vcpus) &&
    (v.vcpus as number) >= 1 &&
    Number.isInteger(v.memoryMB) &&
    (v.memoryMB as number) >= 1 &&
    typeof v.diskGB === 'number' &&
    v.diskGB >= 0 &&
    typeof v.network === 'string' &&
    (v.bootImage === undefined || typeof v.bootImage === 'string') &&
    (v.extraDisks === undefined || (Array.isArray(v.extraDisks) && v.extraDisks.every((d) => typeof d === 'string' && EXTRA_DISK.test(d)))) &&
    typeof v.createdAt === 'string'
  );
}

/**
 * Ids count up, so they give the creation order even if the clock jumped back (edge devices
 * without a battery-backed clock); `createdAt` orders folders someone named otherwise.
 */
function creationOrder(a: VmRecord, b: VmRecord): number {
  const na = ID.exec(a.id)?.[1];
  const nb = ID.exec(b.id)?.[1];
  if (na !== undefined && nb !== undefined) return Number(na) - Number(nb);
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
