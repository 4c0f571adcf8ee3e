const dateTime = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });

/** Relative times as the CLI prints them ("5m ago", "in 1h"): one rounding for both. */
export { formatRelative } from '@pallas/protocol/units';

const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' });
const dayClock = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

/** "14:02" today (local time), "4 Dec, 14:02" before; "an unknown time" for null. */
export function formatClock(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'an unknown time';
  const t = new Date(iso);
  return t.toDateString() === new Date(now).toDateString() ? clock.format(t) : dayClock.format(t);
}

export function formatDateTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

/** "1,234" */
export function formatCount(n: number): string {
  return n.toLocaleString('en');
}
