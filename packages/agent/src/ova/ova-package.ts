import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { open } from 'node:fs/promises';
import { OvaError } from './ova-error.js';
import { OvfError, parseOvf, type OvfDescriptor, type OvfDisk } from './ovf.js';
import { TarError, indexTar, type TarEntry } from './tar-index.js';

export { OvaError };

/** The OVF descriptor is read whole; a real one is a few kB. */
const MAX_DESCRIPTOR_BYTES = 4 << 20;

/** A disk of the OVA with the tar entry that holds its file. */
export interface OvaDisk extends OvfDisk {
  /** Size of the disk file inside the OVA (what an upload sends), 0 for a blank disk. */
  fileBytes: number;
}

/**
 * An OVA on the device's disk, opened: its descriptor parsed and every disk file located in the
 * tar. The disk files are streamed from their place in the archive on demand, never loaded.
 */
export interface OvaPackage {
  path: string;
  /** The descriptor's text, as in the OVA (ESXi's CreateImportSpec takes it as is). */
  ovfXml: string;
  descriptor: OvfDescriptor;
  disks: OvaDisk[];
  /** Total bytes of the disk files: the denominator of upload progress. */
  totalFileBytes: number;
  /** A stream of one disk file's bytes (by `href`), read from the archive in place. */
  openFile(href: string, signal?: AbortSignal): Readable;
}


function bad(path: string, message: string, cause?: unknown): OvaError {
  return new OvaError(`OVA ${path}: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Opens an OVA (a tar: the .ovf descriptor, optionally a .mf manifest, the disk files).
 * Everything wrong with it is an `OvaError` naming the file and the problem.
 */
export async function openOva(path: string): Promise<OvaPackage> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(path, code === 'ENOENT' ? 'no such file on the device' : code === 'EACCES' ? 'permission denied' : (err as Error).message, err);
  }
  let entries: TarEntry[];
  let ovfXml: string;
  try {
    if ((await fh.stat()).isDirectory()) throw bad(path, 'is a directory, not an OVA file');
    try {
      entries = await indexTar(fh);
    } catch (err) {
      if (err instanceof TarError) throw bad(path, `not a readable OVA (tar): ${err.message}`, err);
      throw err;
    }
    const ovfs = entries.filter((e) => e.name.toLowerCase().endsWith('.ovf'));
    if (ovfs.length !== 1) throw bad(path, ovfs.length === 0 ? 'has no .ovf descriptor' : `has ${ovfs.length} .ovf descriptors`);
    const ovf = ovfs[0]!;
    if (ovf.size > MAX_DESCRIPTOR_BYTES) throw bad(path, `descriptor ${ovf.name} is larger than ${MAX_DESCRIPTOR_BYTES} bytes`);
    const buf = Buffer.alloc(ovf.size);
    await fh.read(buf, 0, ovf.size, ovf.offset);
    ovfXml = buf.toString('utf8');
  } finally {
    await fh.close();
  }
  let descriptor: OvfDescriptor;
  try {
    descriptor = parseOvf(ovfXml);
  } catch (err) {
    if (err instanceof OvfError) throw bad(path, err.message, err);
    throw err;
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  const disks = descriptor.disks.map((d): OvaDisk => {
    if (d.href === undefined) return { ...d, fileBytes: 0 };
    const entry = byName.get(d.href);
    if (!entry) throw bad(path, `disk ${d.diskId}: file ${d.href} is not in the archive`);
    return { ...d, fileBytes: entry.size };
  });
  return {
    path,
    ovfXml,
    descriptor,
    disks,
    totalFileBytes: disks.reduce((sum, d) => sum + d.fileBytes, 0),
    openFile(href, signal) {
      const entry = byName.get(href);
      if (!entry) throw bad(path, `file ${href} is not in the archive`);
      if (entry.size === 0) return Readable.from([]);
      // `end` is inclusive.
      return createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
    },
  };
}
