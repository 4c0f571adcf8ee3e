/**
 * The process surface a command touches, passed in rather than taken from `process`, so tests
 * run the whole CLI in-process with fake streams and environment.
 */
import type { Env } from './config.js';

export interface Io {
  /** `isTTY` and `columns` decide whether progress redraws one line or prints plain lines. */
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  env: Env;
  now(): number;
  /**
   * Run fn on Ctrl-C instead of dying at once (a watcher finishes its line and says how to
   * resume); returns the function that removes it. Absent: Ctrl-C keeps its default.
   */
  onInterrupt?(fn: () => void): () => void;
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    now: Date.now,
    onInterrupt: (fn) => {
      process.once('SIGINT', fn);
      return () => process.off('SIGINT', fn);
    },
  };
}
