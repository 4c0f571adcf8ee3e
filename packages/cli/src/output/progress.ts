/**
 * A task's progress while it is watched. On a terminal: one line redrawn in place, with a bar.
 * Elsewhere (a pipe, a CI log, TERM=dumb): a plain line per change and no escape codes, so
 * logs stay readable and greppable.
 */
import type { Task } from '@pallas/protocol';
import { clean } from './table.js';

const BAR_WIDTH = 24;
/** Carriage return, then "erase the whole line". */
const REDRAW = '\r\x1b[2K';

export interface ProgressOut {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressView {
  readonly #out: ProgressOut;
  readonly #tty: boolean;
  #last = '';
  #drawn = false;

  constructor(out: ProgressOut, env: Record<string, string | undefined>) {
    this.#out = out;
    this.#tty = out.isTTY === true && env.TERM !== 'dumb';
  }

  update(task: Task): void {
    const text = this.#tty ? barLine(task) : plainLine(task);
    if (text === this.#last) return; // progress events repeat; print changes only
    this.#last = text;
    if (this.#tty) {
      // A line longer than the terminal wraps, and \r would then redraw only its last part.
      // Some terminals (and `script`) report 0 columns: then assume the classic 80.
      const columns = this.#out.columns !== undefined && this.#out.columns > 0 ? this.#out.columns : 80;
      const max = columns - 1;
      this.#out.write(`${REDRAW}${Array.from(text).slice(0, max).join('')}`);
      this.#drawn = true;
    } else {
      this.#out.write(`${text}\n`);
    }
  }

  /** End the redrawn line so what follows starts on a line of its own. */
  done(): void {
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}

function suffix(task: Task): string {
  const msg = task.progress.message ? `  ${clean(task.progress.message)}` : '';
  const cancelling = task.cancelRequested && task.state !== 'cancelled' ? '  (cancel requested)' : '';
  return `${msg}${cancelling}`;
}

/** Whether progress numbers mean anything yet: not before the agent started the task. */
function started(task: Task): boolean {
  return task.state !== 'queued' && task.state !== 'sent';
}

/** "[##########--------------]  42%  running  copying disk" */
export function barLine(task: Task): string {
  const pct = Math.max(0, Math.min(100, task.progress.pct));
  const filled = Math.round((pct / 100) * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  return `${bar} ${String(pct).padStart(3)}%  ${task.state}${suffix(task)}`;
}

/** "running 42%  copying disk"; "queued" before it started. */
export function plainLine(task: Task): string {
  return started(task) ? `${task.state} ${task.progress.pct}%${suffix(task)}` : `${task.state}${suffix(task)}`;
}
