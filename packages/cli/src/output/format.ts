/** Human renderings of times for tables and detail views (sizes, spans and relative times: `@pallas/protocol/units`). */

export { formatRelative } from '@pallas/protocol/units';

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

/** A timestamp in UTC without milliseconds: "2025-01-31 14:02:11Z". */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
