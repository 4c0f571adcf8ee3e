/** Run the CLI in-process with captured output and a private config directory. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Io } from '../src/io.js';
import { runCli } from '../src/program.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'pallas-cli-test-'));
}

export async function run(
  argv: string[],
  opts: { env?: Record<string, string | undefined>; stdin?: string; now?: number } = {},
): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
    env: opts.env ?? {},
    now: () => opts.now ?? Date.now(),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
