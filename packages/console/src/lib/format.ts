const dateTime = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });

/** Relative times as the CLI prints them ("5m ago", "in 1h"): one rounding for both. */
export { formatRelative } from '@pallas/protocol/units';

export function formatDateTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

/** "1,234" */
export function formatCount(n: number): string {
  return n.toLocaleString('en');
}
