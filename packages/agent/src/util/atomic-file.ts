import { open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

// node:crypto loaded at the first write (the supervisor writes only during an update), and
// asked for once: an import() per write is a module resolution per write (a round trip to the
// loader's thread under a module hook, as in the simulator under the benchmark's tsx).
let crypto: Promise<typeof import('node:crypto')> | undefined;

/**
 * Replaces `path` with `data` so that a crash or power cut leaves either the old file or
 * the new one, never a torn one: write a temporary file beside it, fsync it, rename it over
 * the target, then fsync the directory so the rename itself is durable.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const { randomBytes } = await (crypto ??= import('node:crypto'));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data, 'utf8');
    // open() applies the umask to `mode`; chmod makes the result exact (0600 stays 0600).
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  // Directory fsync is what makes a rename durable on Linux; some platforms refuse to open
  // a directory for it (Windows), where there is nothing better to do.
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    /* best effort */
  } finally {
    await fh?.close();
  }
}
