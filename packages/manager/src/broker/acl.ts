import { devicePrefix, isUpstreamChannel, parseDeviceTopic, deviceCommandFilter } from '@pallas/protocol';
import type { RejectReason } from './broker.js';

/**
 * Deny-by-default topic rules for device clients. A device may publish only on the
 * upstream channels under its own prefix and subscribe only to its own command filter
 * (or topics below it). Pure functions, so any broker adapter can apply them.
 */
export function checkPublish(clientId: string, topic: string, payloadBytes: number, maxBytes: number): RejectReason | null {
  if (!topic.startsWith(devicePrefix(clientId))) return 'foreign_topic';
  const parsed = parseDeviceTopic(topic);
  if (!parsed || !isUpstreamChannel(parsed.channel)) return 'unknown_topic';
  if (payloadBytes > maxBytes) return 'oversized';
  return null;
}

export function checkSubscribe(clientId: string, filter: string): boolean {
  const own = deviceCommandFilter(clientId);
  if (filter === own) return true;
  const base = own.slice(0, -1); // ".../cmd/"
  return filter.startsWith(base) && !filter.includes('+') && !filter.includes('#');
}
