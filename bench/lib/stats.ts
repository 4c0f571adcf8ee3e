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
}

/** Prints rows as an aligned table with the ratio to the same-run baseline. */
export function printTable(title: string, rows: Row[]): void {
  const cells = rows.map((r) => [
    r.metric,
    `${round(r.value, r.value < 10 ? 2 : 0)} ${r.unit}`,
    r.baseline ? `${r.baseline.name}: ${round(r.baseline.value, r.baseline.value < 10 ? 2 : 0)} ${r.unit}` : '',
    r.baseline && r.baseline.value ? `${round(r.value / r.baseline.value, 2)}×` : '',
    r.target ?? '',
  ]);
  const head = ['metric', 'value', 'baseline (same run)', 'ratio', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}
