/** A minimal column formatter: left-aligned, two spaces between columns, no trailing blanks. */

export type Cell = string | number | null | undefined;

export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = [headers.map(clean), ...rows.map((r) => headers.map((_, i) => clean(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => width(r[i] ?? ''))));
  return text
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - width(c)))).join('  ').trimEnd())
    .join('\n');
}

/** Label/value lines ("Name:  edge-1"), aligned on the values. Rows with no value are skipped. */
export function formatFields(fields: readonly (readonly [string, Cell])[]): string {
  const shown = fields.filter(([, v]) => v !== undefined && v !== null && v !== '');
  const w = Math.max(0, ...shown.map(([k]) => width(k) + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${clean(v)}`).join('\n');
}

/**
 * Device names, hostnames and VM names come from devices, which we do not trust to be
 * polite: strip control characters so a name cannot move the cursor or recolor the terminal.
 */
export function clean(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  // eslint-disable-next-line no-control-regex
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Code points, not UTF-16 units, so "é" or "東" count once (wide glyphs are not measured). */
function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
