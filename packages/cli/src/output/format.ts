/** Human renderings of times for tables and detail views (sizes and spans: `@pallas/protocol/units`). */

/** "12s ago", "5m ago", "3h ago", "2d ago"; future times as "in 23h"; null as "never". */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diffSec = Math.round((now - t) / 1000);
  // A few seconds of clock skew between manager and operator must not read as "in 2s".
  if (Math.abs(diffSec) < 1 || (diffSec < 0 && diffSec > -5)) return 'just now';
  const span = compactSpan(Math.abs(diffSec));
  return diffSec > 0 ? `${span} ago` : `in ${span}`;
}

/** The largest whole unit: 42s, 12m, 3h, 5d. */
function compactSpan(sec: number): string {
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h`;
  return `${Math.floor(sec / 86400)}d`;
}

/** A timestamp in UTC without milliseconds: "2025-01-31 14:02:11Z". */
/**
 * The time a stale value dates from, as short as it can be read: `14:02 UTC` the same UTC
 * day as `now`, else `2025-06-01 14:02 UTC` (UTC like every time the CLI prints).
 */
export function formatAsOf(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'an unknown time';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const full = t.toISOString();
  const sameDay = full.slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return `${sameDay ? full.slice(11, 16) : `${full.slice(0, 10)} ${full.slice(11, 16)}`} UTC`;
}

export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
