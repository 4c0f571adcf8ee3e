/**
 * Reads the headers of a tar archive as its bytes pass by (an upload on its way to the store):
 * members' names and sizes, and the data of the few members the caller asks for (small ones:
 * an OVF descriptor, a patch descriptor). Nothing else is kept, so a 20 GB OVA costs a header
 * buffer and the descriptor. ustar, GNU long names (`L`) and pax paths (`x`), like the agent's
 * seeking reader (packages/agent/src/ova/tar-index.ts), which reads the same archives on a device.
 */

const BLOCK = 512;

/** Why the bytes are not the archive they should be: the message is for the operator. */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

export interface TarMember {
  name: string;
  size: number;
  /** The member's bytes, only when `keep` asked for them. */
  data?: Buffer;
}

export interface TarStreamOptions {
  /** The members whose data to keep, and the most bytes each may have (over it: refused). */
  keep(name: string): number | undefined;
  /** Called as each member's header has been read (before its data), e.g. to refuse early. */
  onMember?(member: TarMember, index: number): void;
  /** At most this many members (default 1024, as the agent). */
  maxMembers?: number;
}

function field(buf: Buffer, start: number, length: number): string {
  const raw = buf.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

function octal(buf: Buffer, start: number, length: number): number | undefined {
  if ((buf[start]! & 0x80) !== 0) {
    let n = buf[start]! & 0x7f;
    for (let i = 1; i < length; i++) n = n * 256 + buf[start + i]!;
    return n;
  }
  const text = field(buf, start, length).trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

function checksumOk(header: Buffer): boolean {
  const stored = octal(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

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

/** Feed it every chunk in order with `write`, then `end()` for the regular files it saw. */
export class TarStreamReader {
  readonly #opts: TarStreamOptions;
  readonly #members: TarMember[] = [];
  #header = Buffer.alloc(BLOCK);
  #headerFill = 0;
  /** Bytes of the current member's data (then padding) still to pass. */
  #dataLeft = 0;
  #padLeft = 0;
  #collect: { member: TarMember | undefined; meta: 'L' | 'x' | undefined; parts: Buffer[] } | undefined;
  #longName: string | undefined;
  #pos = 0;
  #ended = false;

  constructor(opts: TarStreamOptions) {
    this.#opts = opts;
  }

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#ended) return; // after the end-of-archive marker: padding, ignored
      if (this.#dataLeft > 0) {
        const n = Math.min(this.#dataLeft, chunk.length - at);
        if (this.#collect) this.#collect.parts.push(Buffer.from(chunk.subarray(at, at + n)));
        this.#dataLeft -= n;
        at += n;
        this.#pos += n;
        if (this.#dataLeft === 0) this.#finishData();
        continue;
      }
      if (this.#padLeft > 0) {
        const n = Math.min(this.#padLeft, chunk.length - at);
        this.#padLeft -= n;
        at += n;
        this.#pos += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#headerFill, chunk.length - at);
      chunk.copy(this.#header, this.#headerFill, at, at + n);
      this.#headerFill += n;
      at += n;
      this.#pos += n;
      if (this.#headerFill === BLOCK) {
        this.#headerFill = 0;
        this.#readHeader(this.#pos - BLOCK);
      }
    }
  }

  #readHeader(offset: number): void {
    const h = this.#header;
    if (h.every((b) => b === 0)) {
      this.#ended = true;
      return;
    }
    if (!checksumOk(h)) {
      throw new TarFormatError(offset === 0 ? 'it is not a tar archive (the first 512 bytes are not a tar header)' : `the tar header at byte ${offset} is damaged (bad checksum)`);
    }
    const size = octal(h, 124, 12);
    if (size === undefined) throw new TarFormatError(`the tar header at byte ${offset} has a bad size field`);
    const type = String.fromCharCode(h[156] || 0x30);
    this.#dataLeft = size;
    this.#padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'L' || type === 'x') {
      if (size > 64 * 1024) throw new TarFormatError(`the tar header at byte ${offset} has a ${size}-byte extended name`);
      this.#collect = { member: undefined, meta: type, parts: [] };
    } else {
      const prefix = field(h, 345, 155);
      const name = (this.#longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100))).replace(/^\.\//, '');
      this.#longName = undefined;
      this.#collect = undefined;
      if (type === '0' || type === '\0' || type === '7') {
        const member: TarMember = { name, size };
        this.#members.push(member);
        if (this.#members.length > (this.#opts.maxMembers ?? 1024)) throw new TarFormatError(`it has more than ${this.#opts.maxMembers ?? 1024} files`);
        this.#opts.onMember?.(member, this.#members.length - 1);
        const limit = this.#opts.keep(name);
        if (limit !== undefined) {
          if (size > limit) throw new TarFormatError(`${name} is ${size} bytes, more than the ${limit} allowed`);
          this.#collect = { member, meta: undefined, parts: [] };
        }
      }
    }
    if (size === 0) this.#finishData();
  }

  #finishData(): void {
    const c = this.#collect;
    this.#collect = undefined;
    if (!c) return;
    const data = Buffer.concat(c.parts);
    if (c.meta === 'L') this.#longName = field(data, 0, data.length);
    else if (c.meta === 'x') this.#longName = paxPath(data) ?? this.#longName;
    else if (c.member) c.member.data = data;
  }

  /** The regular files of the archive; throws if it stopped in the middle of one. */
  end(): TarMember[] {
    if (this.#pos === 0) throw new TarFormatError('the file is empty');
    if (this.#pos < BLOCK) throw new TarFormatError(`it is not a tar archive (${this.#pos} bytes, shorter than one tar header)`);
    if (!this.#ended && (this.#dataLeft > 0 || this.#headerFill > 0)) {
      throw new TarFormatError(`it ends in the middle of ${this.#dataLeft > 0 ? `${this.#members.at(-1)?.name ?? 'a member'}` : 'a tar header'} (truncated at byte ${this.#pos})`);
    }
    return this.#members;
  }
}
