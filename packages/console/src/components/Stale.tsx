import type { Device } from '@pallas/protocol';
import { formatClock } from '../lib/format.js';

/**
 * What a device reported (CPU, memory, VM power states) is live only while it is online; from
 * an unresponsive or offline device it is its last report, shown greyed with its time
 * (docs/console.md, "Stale values").
 */
export function isStale(device: Pick<Device, 'presence'>): boolean {
  return device.presence !== 'online';
}

/** "as of 14:02": the time of the device's last report, its full date and time on hover. */
export function AsOf({ device }: { device: Pick<Device, 'presence' | 'lastSeenAt'> }) {
  if (!isStale(device)) return null;
  return (
    <span className="as-of" data-testid="as-of" title={device.lastSeenAt ? new Date(device.lastSeenAt).toString() : undefined}>
      as of {formatClock(device.lastSeenAt)}
    </span>
  );
}
