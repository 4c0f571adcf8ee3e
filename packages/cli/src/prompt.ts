/**
 * Asking the operator. Prompts go to stderr so that stdout stays clean for `--json` and pipes.
 * Without a terminal, secrets come from the first line of stdin (`echo $PW | pallas login`).
 */
import { createInterface } from 'node:readline';
import { CliError, ExitCode } from './errors.js';
import type { Io } from './io.js';

export function isInteractive(io: Io): boolean {
  return io.stdin.isTTY === true;
}

/** A secret: hidden prompt on a terminal, else the first line of stdin. */
export async function readSecret(io: Io, prompt: string, what = 'password'): Promise<string> {
  const value = isInteractive(io) ? await readHidden(io, prompt) : await firstLine(io);
  if (value === undefined || value === '') throw new CliError(`no ${what} given (pass it as a flag, on a terminal, or as the first line of stdin)`);
  return value;
}

/** A visible answer on a terminal; undefined without one. */
export async function ask(io: Io, question: string): Promise<string | undefined> {
  if (!isInteractive(io)) return undefined;
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.once('SIGINT', () => reject(new CliError('interrupted', ExitCode.interrupted)));
      rl.question(question, resolve);
    });
  } finally {
    rl.close();
  }
}

/** y/N on a terminal; the caller decides what to do without one. */
export async function confirm(io: Io, question: string): Promise<boolean> {
  const answer = await ask(io, `${question} [y/N] `);
  return /^(y|yes)$/i.test((answer ?? '').trim());
}

async function firstLine(io: Io): Promise<string | undefined> {
  const rl = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of rl) return line;
    return undefined;
  } finally {
    rl.close();
  }
}

/** Raw-mode read that echoes nothing; handles backspace, Ctrl-C and Ctrl-D. */
function readHidden(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  stdin.setRawMode?.(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let buf = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
    };
    const onData = (chunk: string | Buffer): void => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(buf);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new CliError('interrupted', ExitCode.interrupted));
          return;
        }
        if (ch === '\u0004' && buf === '') {
          finish();
          resolve('');
          return;
        }
        if (ch === '\u007f' || ch === '\b') {
          buf = Array.from(buf).slice(0, -1).join('');
          continue;
        }
        if (ch >= ' ') buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}
