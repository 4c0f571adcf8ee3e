import { formatCount } from '../lib/format.js';

/** "1–50 of 10,000" with previous/next; pages are server-side (limit/offset). */
export function Pager({ offset, limit, total, onChange }: { offset: number; limit: number; total: number; onChange(offset: number): void }) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <nav className="pager" aria-label="Pages">
      <span className="muted">{formatCount(first)}–{formatCount(last)} of {formatCount(total)}</span>
      <button type="button" className="button small" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>Previous</button>
      <button type="button" className="button small" disabled={last >= total} onClick={() => onChange(offset + limit)}>Next</button>
    </nav>
  );
}
