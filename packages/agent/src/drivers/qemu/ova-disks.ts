import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError } from '../driver-error.js';
import type { OvaDiskSource } from './ova-disk-source.js';
import { QemuImgError, convertToQcow2, createQcow2, growQcow2, virtualSize } from './qemu-img.js';
import { diskFileName } from './vm-store.js';

/**
 * Makes a deployed VM's qcow2 disks in its (staged) folder: each OVA disk converted by
 * qemu-img straight from its place in the OVA, a blank one created empty. Returns the file
 * names in disk order (`disk.qcow2`, `disk-2.qcow2`, …).
 *
 * Each disk ends with the OVF's capacity when that is larger than the VMDK's own virtual size
 * (the OVF is what the appliance's maker declared; growing is safe, shrinking would cut data).
 *
 * `progress(fraction, message)` goes from 0 to 1 over all disks, weighted by the bytes of their
 * files in the OVA (what qemu-img reads). qemu-img failures become `host_error` with its
 * stderr, or `no_space` when it ran out of room.
 */
export async function makeDeployedDisks(
  qemuImg: string,
  folder: string,
  sources: OvaDiskSource[],
  signal: AbortSignal,
  progress: (fraction: number, message: string) => void,
): Promise<string[]> {
  const total = Math.max(1, sources.reduce((sum, s) => sum + s.fileBytes, 0));
  let before = 0;
  const files: string[] = [];
  for (const [i, source] of sources.entries()) {
    const file = diskFileName(i + 1);
    const target = join(folder, file);
    const label = source.href ?? `blank disk ${source.diskId}`;
    try {
      if (source.qemuSource === undefined) {
        progress(before / total, `creating ${label}`);
        await createQcow2(qemuImg, target, source.capacityBytes, signal);
      } else {
        const message = `converting ${label} to qcow2${sources.length > 1 ? ` (disk ${i + 1} of ${sources.length})` : ''}`;
        progress(before / total, message);
        await convertToQcow2(qemuImg, source.qemuSource, target, {
          signal,
          onProgress: (pct) => progress((before + (source.fileBytes * pct) / 100) / total, message),
        });
        if ((await virtualSize(qemuImg, target, signal)) < source.capacityBytes) await growQcow2(qemuImg, target, source.capacityBytes, signal);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof QemuImgError) {
        throw new DriverError(err.noSpace ? 'no_space' : 'host_error', `${err.noSpace ? 'out of disk space while ' : ''}making disk ${i + 1} (${label}) from OVA: ${err.message}`, { cause: err });
      }
      throw err;
    }
    // Flushed before the VM folder is renamed into place (qemu-img's default cache mode for
    // the target need not flush): a power cut at an edge site must not leave a listed VM
    // whose disk is half on the platters.
    await fsyncFile(target);
    before += source.fileBytes;
    progress(before / total, `disk ${i + 1} of ${sources.length} ready`);
    files.push(file);
  }
  return files;
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
