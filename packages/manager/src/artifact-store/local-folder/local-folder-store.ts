import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactTooLargeError, type ArtifactStore, type ByteRange, type PutOptions, type StoredObject } from '../artifact-store.js';

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const TMP_DIR = '.incoming';

function checkId(id: string): void {
  // Ids come from our own service, but a path separator here would be a path traversal.
  if (!ID.test(id)) throw new Error(`invalid artifact object id ${JSON.stringify(id)}`);
}

/**
 * Artifacts as files in one folder (default `<data-dir>/artifacts`). An upload goes to
 * `.incoming/<random>` while it streams, and is renamed into place only once it is complete
 * (rename is atomic within a file system), so a reader never sees half a file. Leftovers of
 * a crash in `.incoming` are removed at start once an hour has passed without a write to them:
 * several managers may share the folder (docs/scale-out.md), and a file another manager is
 * still writing must not go.
 */
/** An upload in `.incoming` not written to for this long is a crash's leftover. */
const STALE_UPLOAD_MS = 3_600_000;

export class LocalFolderStore implements ArtifactStore {
  readonly #dir: string;
  readonly #tmp: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.#tmp = join(dir, TMP_DIR);
    mkdirSync(this.#tmp, { recursive: true, mode: 0o700 });
    const stale = Date.now() - STALE_UPLOAD_MS;
    for (const name of readdirSync(this.#tmp)) {
      const file = join(this.#tmp, name);
      try {
        if (statSync(file).mtimeMs < stale) rmSync(file, { force: true });
      } catch {
        // gone meanwhile (its upload finished on another manager)
      }
    }
  }

  #path(id: string): string {
    checkId(id);
    return join(this.#dir, id);
  }

  async put(id: string, source: Readable, opts: PutOptions): Promise<StoredObject> {
    const final = this.#path(id);
    const temp = join(this.#tmp, `${id}.${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > opts.maxBytes) {
          done(new ArtifactTooLargeError(opts.maxBytes));
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const out = createWriteStream(temp, { mode: 0o600 });
    try {
      await pipeline(source, meter, out);
      await rename(temp, final);
    } catch (err) {
      // An upload refused at once (its first bytes are not the kind it claims) fails the
      // pipeline before the file has even been opened: unlinked then, the file the opening
      // creates afterwards stayed in `.incoming` (5 of 300 such uploads, measured). So the file
      // goes once the stream has closed.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return { size, sha256: hash.digest('hex') };
  }

  async open(id: string, range?: ByteRange): Promise<Readable | undefined> {
    const path = this.#path(id);
    // Open first, so a missing file is an answer here rather than an error mid-response.
    const stream = createReadStream(path, { ...(range ? { start: range.start, end: range.end } : {}), highWaterMark: 1024 * 1024 });
    return new Promise((resolve, reject) => {
      stream.once('open', () => resolve(stream));
      stream.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(undefined) : reject(err)));
    });
  }

  async stat(id: string): Promise<{ size: number } | undefined> {
    try {
      const s = await stat(this.#path(id));
      return { size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    await unlink(this.#path(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}
