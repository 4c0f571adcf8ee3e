import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { run } from './qemu-process.js';

/**
 * `qemu-img` for the deploy: convert a source image to qcow2 with its progress, create a blank
 * qcow2, read and grow an image's virtual size.
 */

/** What a failed qemu-img run says: its stderr (trimmed to this many characters, the end kept). */
const MAX_ERROR_CHARS = 600;

export class QemuImgError extends Error {
  override readonly name = 'QemuImgError';
  /** qemu-img's stderr, trimmed. */
  readonly stderr: string;
  /** Its stderr says the target filesystem is full (ENOSPC / EDQUOT). */
  readonly noSpace: boolean;

  constructor(message: string, stderr: string) {
    super(message);
    this.stderr = stderr;
    this.noSpace = /No space left on device|Disk quota exceeded/i.test(stderr);
  }
}

/**
 * `qemu-img convert -p -O qcow2 <source> <target>`. `source` may be a `json:{…}` filename (see
 * `ova-disk-source.ts`). `onProgress` gets 0..100 as qemu-img prints it with `-p`
 * (`    (42.17/100%)\r`, also when stdout is a pipe). Aborting kills qemu-img (SIGTERM); the
 * promise settles only once it has exited, so the caller can then remove the target safely.
 */
export function convertToQcow2(qemuImg: string, source: string, target: string, options: { signal: AbortSignal; onProgress: (pct: number) => void }): Promise<void> {
  const { signal, onProgress } = options;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    // -n is not used: the target must not exist, so qemu-img creates it with the source's size.
    const child = spawn(qemuImg, ['convert', '-p', '-O', 'qcow2', source, target], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      pending += text;
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop() ?? '';
      for (const part of parts) {
        const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(part);
        if (m) onProgress(Math.min(100, Number(m[1])));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      // Keep only the end: the reason is in the last lines.
      stderr = (stderr + text).slice(-4 * MAX_ERROR_CHARS);
    });
    const onAbort = (): void => {
      child.kill('SIGTERM');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(new QemuImgError(`cannot run ${qemuImg}: ${err.message}`, ''));
    });
    child.once('close', (code, killedBy) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) return reject(signal.reason);
      if (code === 0) return resolve();
      const said = trimError(stderr);
      reject(new QemuImgError(`${basename(qemuImg)} convert failed (${code === null ? `killed by ${String(killedBy)}` : `exit ${code}`}): ${said || 'no message'}`, said));
    });
  });
}

/** A blank, sparse qcow2 of `bytes` (rounded up to 512). */
export async function createQcow2(qemuImg: string, target: string, bytes: number, signal: AbortSignal): Promise<void> {
  await runImg(qemuImg, ['create', '-q', '-f', 'qcow2', target, String(roundUp512(bytes))], signal);
}

/** The virtual size of a qcow2 in bytes (`qemu-img info`). */
export async function virtualSize(qemuImg: string, file: string, signal: AbortSignal): Promise<number> {
  const out = await runImg(qemuImg, ['info', '-f', 'qcow2', '--output=json', file], signal);
  const size = (JSON.parse(out) as { 'virtual-size'?: unknown })['virtual-size'];
  if (typeof size !== 'number') throw new QemuImgError(`${basename(qemuImg)} info ${file} gave no virtual size`, '');
  return size;
}

/** Grows a qcow2 to `bytes` (rounded up to 512); never shrinks (that would cut off data). */
export async function growQcow2(qemuImg: string, file: string, bytes: number, signal: AbortSignal): Promise<void> {
  await runImg(qemuImg, ['resize', '-q', '-f', 'qcow2', file, String(roundUp512(bytes))], signal);
}

async function runImg(qemuImg: string, args: string[], signal: AbortSignal): Promise<string> {
  try {
    return await run(qemuImg, args, { signal, timeoutMs: 120_000 });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const message = trimError((err as Error).message);
    throw new QemuImgError(message, message);
  }
}

function roundUp512(bytes: number): number {
  return Math.ceil(bytes / 512) * 512;
}

function trimError(text: string): string {
  const t = text.trim().replace(/\s+\n/g, '\n');
  return t.length <= MAX_ERROR_CHARS ? t : `…${t.slice(-MAX_ERROR_CHARS)}`;
}
