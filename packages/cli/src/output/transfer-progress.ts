/**
 * Progress of a file transfer. On a terminal: one line redrawn in place with a bar, bytes,
 * rate and percentage. Elsewhere: a plain line every 10% (and at the end), so a CI log gets
 * a handful of lines instead of thousands.
 */
import { formatBytes, formatRate } from '@pallas/protocol/units';
import type { ProgressOut } from './progress.js';

const BAR_WIDTH = 24;
const REDRAW = '\r\x1b[2K';
/** Redraw at most this often: a gigabit upload calls back thousands of times a second. */
const TTY_INTERVAL_MS = 100;

export function transferLine(done: number, total: number, elapsedMs: number, withBar: boolean): string {
  const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
  const rate = elapsedMs > 0 ? (done / elapsedMs) * 1000 : 0;
  const text = `${String(pct).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(total)}  ${formatRate(Math.round(rate))}`;
  if (!withBar) return text.trimStart();
  const filled = Math.round((pct / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${text}`;
}

export class TransferProgress {
  readonly #out: ProgressOut;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #started: number;
  #lastDraw = 0;
  #lastDecile = -1;
  #drawn = false;

  constructor(out: ProgressOut, env: Record<string, string | undefined>, now: () => number = Date.now) {
    this.#out = out;
    this.#tty = out.isTTY === true && env.TERM !== 'dumb';
    this.#now = now;
    this.#started = now();
  }

  update(done: number, total: number): void {
    const t = this.#now();
    if (this.#tty) {
      if (done < total && t - this.#lastDraw < TTY_INTERVAL_MS) return;
      this.#lastDraw = t;
      const columns = this.#out.columns !== undefined && this.#out.columns > 0 ? this.#out.columns : 80;
      this.#out.write(`${REDRAW}${transferLine(done, total, t - this.#started, true).slice(0, columns - 1)}`);
      this.#drawn = true;
      return;
    }
    const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
    if (decile === this.#lastDecile) return;
    this.#lastDecile = decile;
    this.#out.write(`uploaded ${transferLine(done, total, t - this.#started, false)}\n`);
  }

  done(): void {
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}
