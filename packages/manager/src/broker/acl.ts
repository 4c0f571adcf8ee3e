import { DOWNSTREAM_CHANNELS, devicePrefix, deviceCommandFilter, deviceTopic, isUpstreamChannel, parseDeviceTopic } from '@pallas/protocol';
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

/**
 * Only what the protocol needs: the device's own command filter (`…/cmd/#`, what the agent
 * subscribes to) or one of its own command topics. So a session holds at most four
 * subscriptions, each of a bounded length, whatever a device sends (issue #15).
 */
export function checkSubscribe(clientId: string, filter: string): boolean {
  return filter === deviceCommandFilter(clientId) || DOWNSTREAM_CHANNELS.some((channel) => filter === deviceTopic(clientId, channel));
}

/** What a device's PUBLISH may not carry, whatever its topic: QoS 2 or the retain flag. */
export function checkPublishFlags(qos: number, retain: boolean): RejectReason | null {
  // QoS 2 makes the broker keep each message until PUBREL (a device withholding it makes the
  // broker hold them all); retained messages live in the broker for ever. The protocol needs
  // neither.
  if (qos > 1) return 'qos_not_allowed';
  if (retain) return 'retain_not_allowed';
  return null;
}
