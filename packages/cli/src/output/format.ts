/** Human renderings of times for tables and detail views (sizes, spans and relative times: `@pallas/protocol/units`). */

export { formatRelative } from '@pallas/protocol/units';

/** A timestamp in UTC without milliseconds: "2025-01-31 14:02:11Z". */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
