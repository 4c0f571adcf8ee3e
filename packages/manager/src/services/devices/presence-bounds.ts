/**
 * How long the manager waits before it judges a device unresponsive or offline, from the
 * settings it hands devices at enrollment (docs/manager.md, "Presence").
 *
 * - **unresponsive** after `missedReports` status intervals plus slack without a message from
 *   a device the store calls online. The slack (a tenth of the interval, at least 1 s) covers
 *   a report sent a little late and its trip through the broker and the status buffer; the
 *   sweep that applies the bound runs every `sweepMs`, so the state changes between
 *   `unresponsiveAfterMs` and `unresponsiveAfterMs + sweepMs` after the last message.
 * - **offline** when the broker gives up on the connection: at once when the device's socket
 *   closes, after 1.5 × keepalive (MQTT's rule) when it goes silent without closing.
 */
export interface PresenceBounds {
  unresponsiveAfterMs: number;
  sweepMs: number;
  /** When the broker ends a silent connection and publishes its will. */
  keepaliveCutMs: number;
  /** Whether a silent device is shown unresponsive before its connection is ended. */
  unresponsiveFirst: boolean;
}

export function presenceBounds(opts: { statusIntervalSec: number; keepaliveSec: number; missedReports: number }): PresenceBounds {
  const intervalMs = opts.statusIntervalSec * 1000;
  const slackMs = Math.max(1000, intervalMs / 10);
  const unresponsiveAfterMs = opts.missedReports * intervalMs + slackMs;
  // A quarter of an interval, between 250 ms and 5 s: a few cheap indexed updates per interval.
  const sweepMs = Math.min(5000, Math.max(250, intervalMs / 4));
  const keepaliveCutMs = opts.keepaliveSec * 1500;
  return { unresponsiveAfterMs, sweepMs, keepaliveCutMs, unresponsiveFirst: unresponsiveAfterMs + sweepMs < keepaliveCutMs };
}
