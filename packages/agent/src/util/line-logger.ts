import { hostname } from 'node:os';
import type { LogLevel } from '../config/flags.js';

type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/**
 * What the agent and the supervisor log with: the part of pino's `Logger` they use. A pino
 * logger fits (the simulator and the tests give one); `pallas-agent` and `pallas-agent
 * supervise` make a `lineLogger`.
 */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds these fields to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** The supervisor's logger: the same (the name is older). */
export type LineLogger = Logger;

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** JSON of an object's fields without its braces; never throws (a circular or BigInt field is named, not written). */
function fieldsOf(obj: object): string {
  try {
    return JSON.stringify(obj).slice(1, -1);
  } catch (err) {
    return `"logError":${JSON.stringify(`fields not serialisable: ${(err as Error).message}`)}`;
  }
}

/**
 * JSON lines on stdout in pino's format (`level`, `time`, `pid`, `hostname`, `name`, a
 * child's bindings, the object's fields, `msg`), written synchronously, as pino does by
 * default: the same log pipeline reads them, without loading pino (its streams, workers and
 * serialisers) into a device's processes (docs/benchmarks.md, "Agent footprint").
 */
export function lineLogger(name: string, level: LogLevel, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = level === 'silent' ? Infinity : LEVELS[level];
  const make = (base: string): Logger => {
    // Written as pino writes: the base fields, then the object's (a key of the object, such as a
    // child's `pid`, comes after the base one rather than replacing it), then `msg`.
    const at = (n: number): LogFn => ((objOrMsg: object | string, msg?: string): void => {
      if (n < min) return;
      const fields = typeof objOrMsg === 'string' || objOrMsg === null ? '' : fieldsOf(objOrMsg);
      const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
      out(`{"level":${n},"time":${Date.now()},${base}${fields ? `,${fields}` : ''}${text !== undefined ? `,"msg":${JSON.stringify(text)}` : ''}}\n`);
    }) as LogFn;
    return {
      debug: at(LEVELS.debug),
      info: at(LEVELS.info),
      warn: at(LEVELS.warn),
      error: at(LEVELS.error),
      child: (bindings) => {
        const more = fieldsOf(bindings);
        return make(more ? `${base},${more}` : base);
      },
    };
  };
  return make(JSON.stringify({ pid: process.pid, hostname: hostname(), name }).slice(1, -1));
}

/** Logs nothing. */
export const silentLogger: Logger = (() => {
  const none = (() => {}) as LogFn;
  const logger: Logger = { debug: none, info: none, warn: none, error: none, child: () => logger };
  return logger;
})();
