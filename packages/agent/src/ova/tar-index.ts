import type { FileHandle } from 'node:fs/promises';

/** One regular file inside a tar archive: where its bytes are, so they can be streamed in place. */
export interface TarEntry {
  name: string;
  /** Byte offset of the file's data in the archive. */
  offset: number;
  size: number;
}

const BLOCK = 512;

/** A tar that cannot be read as one: the caller turns it into a clear spec error. */
export class TarError extends Error {
  override readonly name = 'TarError';
}

function field(buf: Buffer, start: number, length: number): string {
  const raw = buf.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

function octal(buf: Buffer, start: number, length: number, what: string): number {
  // GNU base-256 for sizes of 8 GiB and more: high bit set, big-endian binary.
  if ((buf[start]! & 0x80) !== 0) {
    let n = buf[start]! & 0x7f;
    for (let i = 1; i < length; i++) n = n * 256 + buf[start + i]!;
    return n;
  }
  const text = field(buf, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`bad ${what} field "${text}" in a tar header`);
  return parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  let stored: number;
  try {
    stored = octal(header, 148, 8, 'checksum');
  } catch {
    return false;
  }
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

/** `path=…` from a pax extended header (`<len> <key>=<value>\n` records). */
function paxPath(data: Buffer): string | undefined {
  let rest = data.toString('utf8');
  let path: string | undefined;
  while (rest.length > 0) {
    const space = rest.indexOf(' ');
    const len = parseInt(rest.slice(0, space), 10);
    if (!(len > 0)) break;
    const record = rest.slice(space + 1, len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    rest = rest.slice(len);
  }
  return path;
}

/**
 * Lists the regular files of a tar (ustar, GNU long names, pax paths) by reading only the
 * headers: seeks over the data, so a multi-gigabyte OVA costs a few reads of 512 bytes.
 */
export async function indexTar(fh: FileHandle, maxEntries = 1024): Promise<TarEntry[]> {
  const size = (await fh.stat()).size;
  const entries: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  while (pos + BLOCK <= size) {
    const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) throw new TarError('truncated tar header');
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(header)) throw new TarError(`bad tar header checksum at byte ${pos} (not a tar file, or a damaged one)`);
    const entrySize = octal(header, 124, 12, 'size');
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = pos + BLOCK;
    if (dataStart + entrySize > size) throw new TarError(`tar entry at byte ${pos} runs past the end of the file (truncated OVA?)`);
    if (type === 'L' || type === 'x') {
      const data = Buffer.alloc(entrySize);
      await fh.read(data, 0, entrySize, dataStart);
      longName = type === 'L' ? field(data, 0, data.length) : paxPath(data) ?? longName;
    } else {
      const prefix = field(header, 345, 155);
      const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
      longName = undefined;
      if (type === '0' || type === '\0' || type === '7') {
        entries.push({ name: name.replace(/^\.\//, ''), offset: dataStart, size: entrySize });
        if (entries.length > maxEntries) throw new TarError(`more than ${maxEntries} files in the archive`);
      }
    }
    pos = dataStart + Math.ceil(entrySize / BLOCK) * BLOCK;
  }
  return entries;
}
