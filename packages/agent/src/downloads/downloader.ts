import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ArtifactGrant, ArtifactManifest, SigningKey } from '@pallas/protocol';
import type { Logger } from '../util/line-logger.js';
import type { OperationContext } from '../drivers/driver.js';
import { describeError } from '../errors.js';
import { Backoff, sleep, type BackoffOptions } from '../util/backoff.js';
import { ArtifactError } from './artifact-error.js';
import type { ArtifactFetcher } from './artifact-fetcher.js';
import { formatBytes, formatRate } from '@pallas/protocol/units';
import { checkGrant } from './manifest-check.js';

/** The folder under the state dir where downloads live. */
export const DOWNLOADS_DIR = 'downloads';

/** What the downloader trusts; read at each fetch, since enrollment may come after start. */
export interface DownloadTrust {
  /** The manager base URL the agent was given (`--manager`); grant URLs are relative to it. */
  manager: string | undefined;
  /** The pinned CA (PEM) for an https manager; undefined: the system's CAs. */
  ca: string | undefined;
  /** The signing key pinned at enrollment; undefined for an agent enrolled before artifacts. */
  signingKey: SigningKey | undefined;
}

export interface DownloaderOptions {
  /** The agent's state dir; files go to `<stateDir>/downloads`. */
  stateDir: string;
  trust: () => DownloadTrust;
  logger: Logger;
  /** Bandwidth cap in bytes per second (`downloads.maxBytesPerSec`). Default: none. */
  maxBytesPerSec?: number;
  /** Delays between attempts after a cut or a 5xx. Default base 500 ms, cap 30 s, full jitter. */
  backoff?: BackoffOptions;
  /** An attempt that receives nothing for this long is cut and retried. Default 30 s. */
  idleTimeoutMs?: number;
  /** Progress lines at most this often. Default 500 ms. */
  progressIntervalMs?: number;
}

/** A failure worth another attempt (a cut, a 5xx, a range the server did not honour). */
class Retry extends Error {}

/** Where one fetch is: bytes in the part file and their running hash. */
interface PartState {
  have: number;
  hash: Hash;
}

/**
 * The `ArtifactFetcher` adapter: downloads over HTTP(S) from the manager with resume, retries,
 * an optional bandwidth cap and progress, and verifies against the signed manifest.
 *
 * Files in `<stateDir>/downloads`: `<id>.part` while downloading (kept across restarts and
 * failed attempts, so the next try resumes), `<id>.<kind>` once verified (until `release`).
 * A cancelled or timed-out fetch deletes its part file, a refused one (hash, size, overrun,
 * artifact deleted) too; any other failure keeps it for a retry (docs/artifacts.md).
 */
export class Downloader implements ArtifactFetcher {
  readonly #opts: Readonly<DownloaderOptions>;
  readonly #dir: string;
  readonly #log: Logger;
  /** One download per artifact at a time: a second fetch waits for the first, then reuses its file. */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(options: DownloaderOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#dir = join(options.stateDir, DOWNLOADS_DIR);
    this.#log = options.logger;
  }

  get dir(): string {
    return this.#dir;
  }

  partPath(artifactId: string): string {
    return join(this.#dir, `${artifactId}.part`);
  }

  verifiedPath(manifest: Pick<ArtifactManifest, 'id' | 'kind'>): string {
    return join(this.#dir, `${manifest.id}.${manifest.kind}`);
  }

  fetch(grant: ArtifactGrant, ctx: OperationContext): Promise<string> {
    const id = grant.manifest.id;
    const before = this.#busy.get(id) ?? Promise.resolve();
    const run = before.catch(() => {}).then(() => this.#fetch(grant, ctx));
    const settled = run.catch(() => {});
    this.#busy.set(id, settled);
    void settled.then(() => {
      if (this.#busy.get(id) === settled) this.#busy.delete(id);
    });
    return run;
  }

  async release(artifactId: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return;
    }
    // The verified file only: a part file is handled by fetch (kept for a retry or deleted).
    await Promise.all(names.filter((n) => n.startsWith(`${artifactId}.`) && !n.endsWith('.part')).map((n) => unlink(join(this.#dir, n)).catch(() => {})));
  }

  /** Removes part files untouched for `maxAgeMs` (left by tasks that failed and were never retried). */
  async sweep(maxAgeMs: number): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const n of names.filter((x) => x.endsWith('.part'))) {
      const path = join(this.#dir, n);
      const s = await stat(path).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > maxAgeMs) {
        await unlink(path).catch(() => {});
        removed.push(n);
      }
    }
    return removed;
  }

  async #fetch(grant: ArtifactGrant, ctx: OperationContext): Promise<string> {
    const trust = this.#opts.trust();
    checkGrant(grant, trust.signingKey);
    const m = grant.manifest;
    ctx.signal.throwIfAborted();
    const final = this.verifiedPath(m);
    if (await this.#alreadyVerified(final, m, ctx.signal)) {
      this.#log.info({ artifact: m.id }, 'artifact already downloaded and verified');
      return final;
    }
    if (!trust.manager) {
      throw new ArtifactError('artifact_unavailable', `cannot download artifact ${m.id}: the agent has no manager URL (set --manager or PALLAS_MANAGER)`);
    }
    const manager = trust.manager;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const part = this.partPath(m.id);
    // 'a': every write goes to the end, whatever happened before; truncate still works.
    const fh = await open(part, 'a', 0o600);
    let keepPart = true;
    try {
      const state: PartState = { have: (await fh.stat()).size, hash: createHash('sha256') };
      if (state.have > m.size) await restart(fh, state);
      if (state.have > 0) {
        // Resuming: the bytes already on disk go into the hash first.
        await hashPrefix(part, state.have, state.hash, ctx.signal);
        this.#log.info({ artifact: m.id, have: state.have, size: m.size }, 'resuming an artifact download');
      }
      const backoff = new Backoff({ baseMs: 500, capMs: 30_000, ...this.#opts.backoff });
      const report = this.#reporter(m, ctx);
      while (state.have < m.size) {
        const before = state.have;
        try {
          // `grant.url` is read at each attempt: the runner refreshes it when the task is resent.
          const url = grant.url;
          try {
            if (await this.#attempt(resolveGrantUrl(manager, url), trust.ca, m, fh, state, ctx, report)) break;
          } catch (err) {
            if (err instanceof ArtifactError && err.code === 'artifact_forbidden' && grant.url !== url) throw new Retry('the URL was refused; a fresh one came meanwhile');
            throw err;
          }
        } catch (err) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          if (!(err instanceof Retry) && !isNetworkError(err)) throw err;
          if (state.have > before) backoff.reset();
          const delayMs = backoff.next();
          this.#log.warn({ artifact: m.id, have: state.have, size: m.size, delayMs, err: describeError(err) }, 'artifact download interrupted; resuming after a pause');
          await sleep(delayMs, ctx.signal);
        }
      }
      await fh.sync();
      const sha256 = state.hash.digest('hex');
      if (state.have !== m.size || sha256 !== m.sha256) {
        keepPart = false;
        throw new ArtifactError('artifact_invalid', state.have !== m.size
          ? `artifact ${m.id}: downloaded ${state.have} bytes, the signed manifest says ${m.size}; file deleted`
          : `artifact ${m.id}: SHA-256 of the download is ${sha256}, the signed manifest says ${m.sha256}; file deleted`);
      }
      await rename(part, final);
      this.#log.info({ artifact: m.id, size: m.size }, 'artifact downloaded and verified');
      return final;
    } catch (err) {
      // Cancelled or timed out: the task is over, its part file goes. A refused file goes too.
      if (ctx.signal.aborted || (err instanceof ArtifactError && (err.code === 'artifact_invalid' || err.code === 'artifact_not_found'))) keepPart = false;
      throw ctx.signal.aborted ? ctx.signal.reason : err;
    } finally {
      await fh.close().catch(() => {});
      if (!keepPart) await unlink(part).catch(() => {});
    }
  }

  /** A verified file from an earlier task is used if it still matches the manifest; otherwise it goes. */
  async #alreadyVerified(path: string, m: ArtifactManifest, signal: AbortSignal): Promise<boolean> {
    const s = await stat(path).catch(() => undefined);
    if (!s) return false;
    if (s.size === m.size) {
      const hash = createHash('sha256');
      await hashPrefix(path, s.size, hash, signal);
      if (hash.digest('hex') === m.sha256) return true;
    }
    await unlink(path).catch(() => {});
    return false;
  }

  /**
   * One GET (with `Range` when resuming). Resolves true when the file is complete, false to go
   * on; throws `Retry` or a network error to try again, an `ArtifactError` to give up.
   */
  async #attempt(url: URL, ca: string | undefined, m: ArtifactManifest, fh: FileHandle, state: PartState, ctx: OperationContext, report: (have: number, rate: number) => void): Promise<boolean> {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (state.have > 0) {
      headers.range = `bytes=${state.have}-`;
      headers['if-range'] = `"${m.sha256}"`;
    }
    const res = await get(url, headers, ca, ctx.signal, this.#opts.idleTimeoutMs ?? 30_000);
    try {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        const length = Number(res.headers['content-length']);
        if (Number.isFinite(length) && length > m.size) {
          throw new ArtifactError('artifact_invalid', `the server offers ${length} bytes for artifact ${m.id}, the signed manifest says ${m.size}; refused`);
        }
        // The whole file: whatever the part held is dropped (the server has no range for it,
        // or the file changed under If-Range).
        if (state.have > 0) await restart(fh, state);
      } else if (status === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
        if (!range) throw new Retry(`206 without a usable Content-Range (${String(res.headers['content-range'])})`);
        if (Number(range[3]) !== m.size) {
          throw new ArtifactError('artifact_invalid', `the server has ${range[3]} bytes for artifact ${m.id}, the signed manifest says ${m.size}; refused`);
        }
        if (Number(range[1]) !== state.have) {
          await restart(fh, state);
          throw new Retry(`the server answered from byte ${range[1]}, not ${state.have}; starting over`);
        }
      } else if (status === 416) {
        const range = /^bytes \*\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
        if (range && Number(range[1]) === m.size && state.have === m.size) return true;
        await restart(fh, state);
        throw new Retry(`416 for bytes ${state.have}- (${String(res.headers['content-range'])}); starting over`);
      } else if (status === 403) {
        throw new ArtifactError('artifact_forbidden', `the manager refused the download of artifact ${m.id}: ${await reason(res)}`);
      } else if (status === 404) {
        throw new ArtifactError('artifact_not_found', `artifact ${m.id} is no longer on the manager (deleted?): ${await reason(res)}`);
      } else if (status >= 500 || status === 408 || status === 429) {
        throw new Retry(`HTTP ${status}: ${await reason(res)}`);
      } else {
        throw new ArtifactError('artifact_unavailable', `download of artifact ${m.id} failed with HTTP ${status}: ${await reason(res)}`);
      }
      await this.#receive(res, m, fh, state, ctx, report);
      return state.have === m.size;
    } finally {
      if (!res.complete) res.destroy();
    }
  }

  /** Appends the body to the part file, hashing as it goes; never past `manifest.size`. */
  async #receive(res: IncomingMessage, m: ArtifactManifest, fh: FileHandle, state: PartState, ctx: OperationContext, report: (have: number, rate: number) => void): Promise<void> {
    const cap = this.#opts.maxBytesPerSec;
    const started = performance.now();
    let got = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (state.have + chunk.length > m.size) {
        throw new ArtifactError('artifact_invalid', `the server sent more than the ${m.size} bytes of artifact ${m.id}'s signed manifest; refused and deleted`);
      }
      await fh.write(chunk);
      state.hash.update(chunk);
      state.have += chunk.length;
      got += chunk.length;
      const elapsed = performance.now() - started;
      report(state.have, elapsed > 0 ? (got * 1000) / elapsed : 0);
      if (cap) {
        // Paced per attempt: a pause between attempts earns no burst afterwards.
        const ahead = (got / cap) * 1000 - elapsed;
        if (ahead > 1) await sleep(ahead, ctx.signal);
      }
    }
    // A body cut short surfaces as an error from the loop above ("aborted"); a clean end with
    // fewer bytes than asked (a proxy that closed politely) is a cut all the same.
    if (state.have < m.size && !res.complete) throw new Retry('the response ended early');
  }

  /** Progress 0–100 of the bytes, with size and rate in words, at most every `progressIntervalMs`. */
  #reporter(m: ArtifactManifest, ctx: OperationContext): (have: number, rate: number) => void {
    const every = this.#opts.progressIntervalMs ?? 500;
    let last = 0;
    return (have, rate) => {
      const now = performance.now();
      if (now - last < every && have < m.size) return;
      last = now;
      const pct = m.size === 0 ? 100 : Math.floor((have / m.size) * 100);
      ctx.progress(pct, `downloading ${m.name}-${m.version}: ${formatBytes(have)} of ${formatBytes(m.size)} at ${formatRate(rate)}`);
    };
  }
}

/**
 * A grant's URL is relative to the manager base URL, path prefix kept:
 * `https://host/pallas` + `/dl/x?…` → `https://host/pallas/dl/x?…` (docs/artifacts.md).
 */
export function resolveGrantUrl(manager: string, relative: string): URL {
  const base = manager.endsWith('/') ? manager : `${manager}/`;
  const url = new URL(relative.replace(/^\/+/, ''), base);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ArtifactError('artifact_unavailable', `download URL ${url.href} is not http(s)`);
  return url;
}

async function restart(fh: FileHandle, state: PartState): Promise<void> {
  await fh.truncate(0);
  state.have = 0;
  state.hash = createHash('sha256');
}

/** Feeds the first `bytes` of `path` into `hash`, streaming. */
async function hashPrefix(path: string, bytes: number, hash: Hash, signal: AbortSignal): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: 256 * 1024, signal }) as AsyncIterable<Buffer>) hash.update(chunk);
}

/** One GET over node:http(s), with the pinned CA; resolves with the response head. */
async function get(url: URL, headers: Record<string, string>, ca: string | undefined, signal: AbortSignal, idleMs: number): Promise<IncomingMessage> {
  const https = url.protocol === 'https:';
  const { request } = https ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, signal, ...(https && ca ? { ca } : {}) }, resolve);
    req.setTimeout(idleMs, () => req.destroy(Object.assign(new Error(`no data from the manager for ${idleMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

/** The manager's `{error: {message}}`, or the status line. Reads at most 4 KiB. */
async function reason(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n > 4096) break;
    }
  } catch {
    // the status is enough
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    // not JSON
  }
  return `HTTP ${res.statusCode ?? 0} ${res.statusMessage ?? ''}`.trim();
}

/** The local disk's failures: retrying would not help, the task fails with them. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EIO']);

/** Cuts, resets, refused connections, TLS failures mid-stream, timeouts: all worth a retry. */
function isNetworkError(err: unknown): boolean {
  if (err instanceof ArtifactError || !(err instanceof Error)) return false;
  return !DISK_ERRORS.has((err as NodeJS.ErrnoException).code ?? '');
}
