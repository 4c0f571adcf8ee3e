/**
 * The broker port. The manager talks to devices only through this: publish a command,
 * receive what devices publish, see who is connected, cut a device off. The embedded
 * adapter runs Aedes in-process; an external adapter (an MQTT 5 cluster with shared
 * subscriptions) implements the same interface.
 */
export interface PublishOptions {
  qos: 0 | 1;
  retain?: boolean;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface BrokerEvents {
  /** A device's MQTT session opened (after authentication). */
  connected: (clientId: string) => void;
  /** A device's MQTT session closed, for any reason. */
  disconnected: (clientId: string) => void;
  /** The manager published a message (to devices). */
  published: (topic: string) => void;
  /**
   * A device authenticated while a session with its client id was still open (from
   * `previousAddress`); the broker hands the id to the new connection. Either a reconnect
   * the broker had not noticed the end of yet, or the credential is in two places.
   */
  takeover: (clientId: string, previousAddress: string | null, address: string | null) => void;
  /** The broker refused something a client sent; `reason` is a short metric label. */
  rejected: (reason: RejectReason, clientId: string | null, detail: string) => void;
  /** An authenticated device was disconnected for breaking a rule of the protocol (audited). */
  cutOff: (clientId: string, reason: RejectReason, detail: string) => void;
}

export type RejectReason =
  | 'auth_failed'
  | 'client_id_mismatch'
  | 'foreign_topic'
  | 'unknown_topic'
  | 'oversized'
  | 'subscribe_denied'
  | 'malformed'
  | 'device_blocked'
  | 'device_pending'
  | 'rate_limited'
  | 'connect_rate'
  | 'packet_too_large'
  // A device's PUBLISH or will with QoS 2, or with the retain flag: cut off (issue #15).
  | 'qos_not_allowed'
  | 'retain_not_allowed'
  // A will larger than the embedded broker keeps.
  | 'will_too_large'
  // Too many refused subscriptions on one connection: cut off.
  | 'too_many_subscriptions'
  // A session's queue of unacknowledged messages is full: the message is not queued.
  | 'queue_full';

export interface Broker {
  /** Opens listeners (embedded) or connections (external). */
  start(): Promise<void>;
  stop(): Promise<void>;
  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void>;
  /** Receives every device message matching `filter` (MQTT wildcards allowed). */
  subscribe(filter: string, handler: MessageHandler): Promise<void>;
  /** Closes a device's live connection, if it has one. */
  disconnect(clientId: string): void;
  /** Where a connected device's connection comes from (null when not connected or unknown). */
  addressOf(clientId: string): string | null;
  connectedCount(): number;
  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): void;
  /** Ports actually bound (the embedded adapter may have been asked for port 0). */
  readonly ports: { mqtt: number | null; mqtts: number | null };
}

export type AuthResult =
  | { ok: true }
  | { ok: false; reason: 'auth_failed' | 'client_id_mismatch' | 'device_blocked' | 'device_pending' };

/** How the broker checks a device's credential; implemented by the device registry. */
export interface DeviceAuthenticator {
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthResult>;
}
