/** Human renderings of times and sizes for tables and detail views. */

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

/** Two units for uptimes: "5d 3h", "3h 12m", "12m 5s", "42s". */
export function formatDuration(totalSec: number): string {
  const s = Math.max(0, Math.floor(totalSec));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** Megabytes as "512 MiB" or "31.4 GiB" (hypervisors report binary units). */
export function formatMB(mb: number): string {
  return mb < 1024 ? `${Math.round(mb)} MiB` : `${(mb / 1024).toFixed(1)} GiB`;
}

/** Gigabytes as "120.5 GiB" or "1.8 TiB". */
export function formatGB(gb: number): string {
  return gb < 1024 ? `${gb.toFixed(1)} GiB` : `${(gb / 1024).toFixed(1)} TiB`;
}

/** A timestamp in UTC without milliseconds: "2025-01-31 14:02:11Z". */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
