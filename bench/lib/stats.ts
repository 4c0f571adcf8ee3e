/** Percentile by nearest rank over a copy of the samples (ms). */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const round = (n: number, digits = 1): number => Number.isFinite(n) ? Number(n.toFixed(digits)) : n;

export interface Row {
  metric: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  target?: string;
  /** Spread of the value (e.g. a slope's standard error), printed as `± spread`. */
  spread?: number;
  /**
   * Why the figure failed the benchmark's own sanity check (negative, noisier than itself,
   * fewer messages than offered…). A failed figure is printed as the failure, not as a result,
   * and the benchmark exits with status 1.
   */
  failed?: string;
}

/** A row whose value is no result: the reason is printed instead. */
export function failedRow(row: Row, reason: string | undefined): Row {
  return reason ? { ...row, failed: reason } : row;
}

/** Prints rows as an aligned table with the ratio to the same-run baseline. */
export function printTable(title: string, rows_: Row[]): void {
  // A value that is not a number (a percentile of no samples, a rate over zero seconds) is
  // never a result, whatever the scenario forgot to check.
  const rows = rows_.map((r) => r.failed || Number.isFinite(r.value) ? r : { ...r, failed: `${r.value}: no samples` });
  const digits = (v: number) => Math.abs(v) < 10 ? 2 : 0;
  const cells = rows.map((r) => [
    r.metric,
    r.failed ? `FAILED CHECK (${r.failed})` : `${round(r.value, digits(r.value))}${r.spread !== undefined ? ` ± ${round(r.spread, digits(r.spread))}` : ''} ${r.unit}`,
    r.baseline ? `${r.baseline.name}: ${round(r.baseline.value, r.baseline.value < 10 ? 2 : 0)} ${r.unit}` : '',
    r.baseline && r.baseline.value && !r.failed ? `${round(r.value / r.baseline.value, 2)}×` : '',
    r.target ?? '',
  ]);
  const head = ['metric', 'value', 'baseline (same run)', 'ratio', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
  const failures = rows.filter((r) => r.failed);
  if (failures.length) {
    console.log(`${failures.length} figure(s) failed the sanity check: not results.`);
    process.exitCode = 1;
  }
}
