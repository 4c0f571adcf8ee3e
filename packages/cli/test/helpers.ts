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
  opts: {
    env?: Record<string, string | undefined>;
    stdin?: string;
    now?: number;
    /** Pretend stdout is a terminal this wide. */
    tty?: { columns: number };
    /** Press Ctrl-C when this resolves. */
    interrupt?: Promise<unknown>;
    /** Told of everything written to stdout so far, after each write. */
    onStdout?: (stdout: string) => void;
  } = {},
): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const handlers = new Set<() => void>();
  void opts.interrupt?.then(() => {
    for (const h of handlers) h();
  });
  const io: Io = {
    stdout: { write: (s: string) => { stdout += s; opts.onStdout?.(stdout); }, isTTY: opts.tty !== undefined, columns: opts.tty?.columns },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
    env: opts.env ?? {},
    now: () => opts.now ?? Date.now(),
    onInterrupt: (fn) => {
      handlers.add(fn);
      return () => handlers.delete(fn);
    },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
