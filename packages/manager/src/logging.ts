import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

/** `auto`: readable lines on a terminal, JSON otherwise (a file, a pipe, journald, a container log). */
export type LogFormat = 'auto' | 'pretty' | 'json';

export interface ManagerLog {
  logger: Logger;
  /** The format chosen (`auto` resolved). */
  format: 'pretty' | 'json';
  /**
   * Writes `text` (the start banner) as one block and then lets the log lines held since the
   * logger was made through, in order: the banner is never cut by a log line.
   */
  releaseAfter(text: string): void;
}

/**
 * Holds what the logger writes until it is released: the manager logs while it starts (listeners,
 * jobs) and the banner comes after, so without it the two interleave. Bounded: past 1,000 held
 * lines (a start that logs a storm) it lets them through.
 */
class HeldStream implements DestinationStream {
  #held: string[] | undefined = [];
  readonly #out: NodeJS.WritableStream;
  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }
  write(line: string): void {
    if (this.#held && this.#held.length < 1000) this.#held.push(line);
    else this.#out.write(line);
  }
  release(first: string): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#out.write(first + held.join(''));
  }
}

/**
 * The manager's one logger: pino, JSON lines as always, or the same records made readable with
 * pino-pretty (`[12:00:01] INFO: http: HTTPS listening at https://…`) when `format` says so.
 * `out` defaults to stdout; tests pass their own stream and `isTty`.
 */
export function createManagerLog(opts: { level: string; format: LogFormat; out?: NodeJS.WritableStream & { isTTY?: boolean }; isTty?: boolean }): ManagerLog {
  const out = opts.out ?? process.stdout;
  const tty = opts.isTty ?? out.isTTY === true;
  const format = opts.format === 'auto' ? (tty ? 'pretty' : 'json') : opts.format;
  const gate = new HeldStream(out);
  // prettyFactory formats one JSON line synchronously: no worker thread, no second stream, so
  // a line is on the terminal when the call that logged it returns (as with JSON).
  const pretty = format === 'pretty' ? prettyFactory({
    colorize: tty, translateTime: 'SYS:HH:MM:ss', singleLine: true, ignore: 'pid,hostname,component,job',
    // One line a record: "[12:00:01] INFO: http: HTTPS listening at https://…", other fields after it as JSON.
    messageFormat: '{if component}{component}: {end}{if job}{job}: {end}{msg}',
  }) : undefined;
  const target: DestinationStream = pretty ? { write: (line: string) => gate.write(pretty(line)) } : gate;
  return { logger: pino({ level: opts.level }, target), format, releaseAfter: (text) => gate.release(text) };
}
