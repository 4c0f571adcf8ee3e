import type { QueueBounds } from './bounded-persistence.js';

/**
 * What one device's session may make the embedded broker hold, whatever the device sends
 * (issue #15; the table in docs/security.md). With these, a device's broker state is at most
 * its four command subscriptions, one will and its queue, across reconnects.
 */
export const SESSION_LIMITS: {
  /** Unacknowledged or offline messages per session: 100 messages and 1 MiB (tasks are sent 16 at a time). */
  readonly queue: QueueBounds;
  /** A will's payload: the agent's is about 50 bytes. */
  readonly maxWillBytes: number;
  /** Refused subscriptions on one connection before it is closed (an agent makes none). */
  readonly maxRefusedSubscriptions: number;
} = Object.freeze({
  queue: Object.freeze({ maxMessages: 100, maxBytes: 1024 * 1024 }),
  maxWillBytes: 1024,
  maxRefusedSubscriptions: 16,
});
