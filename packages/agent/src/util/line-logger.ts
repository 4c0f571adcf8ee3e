import { hostname } from 'node:os';
import type { LogLevel } from '../config/flags.js';

/** What the supervisor logs with: the part of pino's `Logger` it uses (a pino logger fits). */
export interface LineLogger {
  info(obj: object, msg?: string): void;
  info(msg: string): void;
  warn(obj: object, msg?: string): void;
  warn(msg: string): void;
  error(obj: object, msg?: string): void;
  error(msg: string): void;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/**
 * JSON lines on stdout in pino's format (`level`, `time`, `pid`, `hostname`, `name`, the
 * object's fields, `msg`), for the supervisor: the same log pipeline reads it as the agent's,
 * without loading pino (its streams and workers) into the process that only watches the agent.
 */
export function lineLogger(name: string, level: LogLevel, out: (line: string) => void = (l) => process.stdout.write(l)): LineLogger {
  const min = level === 'silent' ? Infinity : LEVELS[level];
  const base = JSON.stringify({ pid: process.pid, hostname: hostname(), name }).slice(1, -1);
  // Written as pino writes: the base fields, then the object's (a key of the object, such as a
  // child's `pid`, comes after the base one rather than replacing it), then `msg`.
  const at = (n: number) => (objOrMsg: object | string, msg?: string): void => {
    if (n < min) return;
    const fields = typeof objOrMsg === 'string' ? '' : JSON.stringify(objOrMsg).slice(1, -1);
    const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
    out(`{"level":${n},"time":${Date.now()},${base}${fields ? `,${fields}` : ''}${text !== undefined ? `,"msg":${JSON.stringify(text)}` : ''}}\n`);
  };
  return { info: at(LEVELS.info), warn: at(LEVELS.warn), error: at(LEVELS.error) };
}
