/**
 * MQTT topic layout. Every topic a device may touch lives under its own prefix
 * `pallas/v1/d/{deviceId}/`, so one broker ACL rule ("own prefix only") confines it.
 * The version segment lets a future protocol run beside this one on the same broker.
 */
export const PROTOCOL_VERSION = 'v1';
export const TOPIC_ROOT = `pallas/${PROTOCOL_VERSION}`;
export const DEVICE_ROOT = `${TOPIC_ROOT}/d`;

/** Channels a device publishes on (device → manager). */
export const UPSTREAM_CHANNELS = ['presence', 'status', 'task/progress', 'task/result', 'events'] as const;
export type UpstreamChannel = (typeof UPSTREAM_CHANNELS)[number];

/** Channels the manager publishes on (manager → device). The device subscribes to `cmd/#`. */
export const DOWNSTREAM_CHANNELS = ['cmd/control', 'cmd/task', 'cmd/task-ack'] as const;
export type DownstreamChannel = (typeof DOWNSTREAM_CHANNELS)[number];

export type Channel = UpstreamChannel | DownstreamChannel;

/**
 * QoS per channel. QoS 1 wherever a loss would matter; QoS 0 where the message is advisory and
 * the next one (or a re-send) makes up for a lost one: task progress (the latest wins, the
 * result carries the outcome) and result acknowledgements (the agent re-sends an unacknowledged
 * result after every reconnect and every 30 s while online, and gets a new ack for it). Each
 * QoS 0 message saves a PUBACK on both sides, which adds up in a fan-out to thousands.
 */
export const CHANNEL_QOS: Readonly<Record<Channel, 0 | 1>> = {
  presence: 1,
  status: 1,
  'task/progress': 0,
  'task/result': 1,
  events: 1,
  'cmd/control': 1,
  'cmd/task': 1,
  'cmd/task-ack': 0,
};

export function devicePrefix(deviceId: string): string {
  return `${DEVICE_ROOT}/${deviceId}/`;
}

export function deviceTopic(deviceId: string, channel: Channel): string {
  return `${DEVICE_ROOT}/${deviceId}/${channel}`;
}

/** The filter a device subscribes to for everything the manager sends it. */
export function deviceCommandFilter(deviceId: string): string {
  return `${DEVICE_ROOT}/${deviceId}/cmd/#`;
}

/** The filter the manager subscribes to for one upstream channel of every device. */
export function upstreamFilter(channel: UpstreamChannel): string {
  return `${DEVICE_ROOT}/+/${channel}`;
}

export interface ParsedTopic {
  deviceId: string;
  channel: string;
}

/** Splits `pallas/v1/d/{id}/{channel...}`; null for anything outside the device tree. */
export function parseDeviceTopic(topic: string): ParsedTopic | null {
  const root = `${DEVICE_ROOT}/`;
  if (!topic.startsWith(root)) return null;
  const rest = topic.slice(root.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return null;
  return { deviceId: rest.slice(0, slash), channel: rest.slice(slash + 1) };
}

export function isUpstreamChannel(channel: string): channel is UpstreamChannel {
  return (UPSTREAM_CHANNELS as readonly string[]).includes(channel);
}
