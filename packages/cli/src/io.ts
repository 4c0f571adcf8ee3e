/**
 * The process surface a command touches, passed in rather than taken from `process`, so tests
 * run the whole CLI in-process with fake streams and environment.
 */
import type { Env } from './config.js';

export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  env: Env;
  now(): number;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, now: Date.now };
}
