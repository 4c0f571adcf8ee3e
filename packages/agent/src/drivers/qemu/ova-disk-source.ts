import { open } from 'node:fs/promises';
import { DriverError } from '../driver-error.js';
import { indexTar, type OvaPackage } from '../../ova/index.js';

/**
 * Where qemu-img reads an OVA's disk from: the VMDK **in place inside the OVA**, not a copy.
 *
 * qemu-img cannot open a tar member by name, but its block layer can: the `raw` format driver
 * takes an `offset` and a `size` and shows that window of a file as a whole image, and the
 * `vmdk` driver reads on top of it. So `qemu-img convert` gets a `json:{…}` filename, e.g.
 *
 * ```
 * json:{"driver":"vmdk","backing":null,
 *       "file":{"driver":"raw","offset":1536,"size":3235840,
 *               "file":{"driver":"file","filename":"/data/ova/fw.ova"}}}
 * ```
 *
 * Compared with streaming the VMDK out to a temporary file first, this needs no room for a
 * second copy (a multi-GB VMDK on a small edge disk) and reads the bytes once instead of three
 * times (read, write, read again).
 *
 * Safety, since an OVA comes from outside: `"backing": null` stops qemu-img from opening a
 * parent disk that the VMDK's embedded descriptor names (`parentFileNameHint` could point at
 * any file of the host); and the disk file must start with the magic of a binary sparse VMDK
 * (`KDMV`: monolithicSparse or streamOptimized, the only kinds an OVA carries), whose single
 * extent is the file itself, so a text descriptor naming extent files elsewhere on the host is
 * refused before qemu-img sees it.
 */

export interface OvaDiskSource {
  diskId: string;
  /** The file in the OVA, or undefined for a blank disk (created empty). */
  href?: string;
  capacityBytes: number;
  /** The disk file's size in the OVA (progress weight), 0 for a blank disk. */
  fileBytes: number;
  /** The filename to give qemu-img, or undefined for a blank disk. */
  qemuSource?: string;
}

/** The magic of a VMDK sparse extent ("KDMV", little-endian 0x564d444b). */
const SPARSE_VMDK_MAGIC = Buffer.from('KDMV', 'latin1');

/** Finds every disk's bytes in the OVA and checks they are sparse VMDKs. Errors are `invalid_spec`. */
export async function ovaDiskSources(ova: OvaPackage): Promise<OvaDiskSource[]> {
  const bad = (message: string): DriverError => new DriverError('invalid_spec', `OVA ${ova.path}: ${message}`);
  let fh;
  try {
    fh = await open(ova.path, 'r');
  } catch (err) {
    throw new DriverError('invalid_spec', `OVA ${ova.path}: cannot open it again to convert its disks: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Indexed again rather than taken from the package: the package streams files but does not
    // say where they are, and the headers are a few reads of 512 bytes.
    const entries = new Map((await indexTar(fh)).map((e) => [e.name, e]));
    const sources: OvaDiskSource[] = [];
    for (const disk of ova.disks) {
      if (disk.href === undefined) {
        sources.push({ diskId: disk.diskId, capacityBytes: disk.capacityBytes, fileBytes: 0 });
        continue;
      }
      const entry = entries.get(disk.href);
      if (!entry) throw bad(`disk ${disk.diskId}: file ${disk.href} is not in the archive`);
      const magic = Buffer.alloc(4);
      const { bytesRead } = await fh.read(magic, 0, 4, entry.offset);
      if (bytesRead < 4 || !magic.equals(SPARSE_VMDK_MAGIC)) {
        throw bad(
          `disk ${disk.diskId} (${disk.href}) is not a sparse or streamOptimized VMDK${disk.format ? ` (OVF format ${disk.format})` : ''}; ` +
            'the qemu driver converts only those, the disk format OVAs carry',
        );
      }
      const qemuSource = `json:${JSON.stringify({
        driver: 'vmdk',
        backing: null,
        file: { driver: 'raw', offset: entry.offset, size: entry.size, file: { driver: 'file', filename: ova.path } },
      })}`;
      sources.push({ diskId: disk.diskId, href: disk.href, capacityBytes: disk.capacityBytes, fileBytes: entry.size, qemuSource });
    }
    return sources;
  } catch (err) {
    if (err instanceof DriverError) throw err;
    throw new DriverError('invalid_spec', `OVA ${ova.path}: cannot read it: ${(err as Error).message}`, { cause: err });
  } finally {
    await fh.close();
  }
}
