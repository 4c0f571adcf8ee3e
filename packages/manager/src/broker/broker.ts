import type { BrokerAccounts } from './accounts.js';

/**
 * The broker port. The manager talks to devices only through this: publish a command,
 * receive what devices publish, see who is connected, cut a device off. The embedded
 * adapter runs Aedes in-process; the external adapter (broker/external/) is a client of an
 * MQTT broker shared by several managers, receiving device messages through shared
 * subscriptions.
 */
/**
 * Nothing the manager publishes is retained (there is no option for it): a retained command
 * would reach a device again at every subscribe, and retained messages on device topics are
 * what Mosquitto 2.0.11's shared subscriptions replay wrongly (docs/scale-out.md).
 */
export interface PublishOptions {
  qos: 0 | 1;
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
  /**
   * The manager's own link to an external broker came back after an outage (never emitted by
   * the embedded broker). Device messages published meanwhile may have been lost for this
   * manager, and devices may have come and gone unseen: listeners re-check what they rely on.
   */
  relinked: () => void;
  /** An authenticated device was disconnected for breaking a rule of the protocol (audited). */
  cutOff: (clientId: string, reason: RejectReason, detail: string) => void;
}

export interface SubscribeOptions {
  /**
   * Every manager receives each matching message (a plain subscription), instead of exactly
   * one manager of the group (a shared subscription, the default on an external broker).
   * Presence needs this: each manager keeps its own in-memory view of who is online.
   * The embedded broker has one manager and ignores it. Default: false.
   */
  everyManager?: boolean;
}

export interface BrokerHealth {
  ok: boolean;
  /** Why not ok, or what is worth knowing (e.g. "reconnecting to mqtts://broker:8883"). */
  detail?: string;
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
  /** `embedded`: Aedes inside this manager; `external`: a broker shared by several managers. */
  readonly kind: 'embedded' | 'external';
  /** Opens listeners (embedded) or connections (external). */
  start(): Promise<void>;
  stop(): Promise<void>;
  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void>;
  /** Receives device messages matching `filter` (MQTT wildcards allowed); see SubscribeOptions. */
  subscribe(filter: string, handler: MessageHandler, options?: SubscribeOptions): Promise<void>;
  /**
   * Closes a device's live connection, if it has one. The external broker can only do this
   * through its accounts (disabling the device's client), so it is a no-op there.
   */
  disconnect(clientId: string): void;
  /** Where a connected device's connection comes from (null when not connected or unknown). */
  addressOf(clientId: string): string | null;
  /** Devices connected right now; null when this manager cannot know (external broker). */
  connectedCount(): number | null;
  health(): BrokerHealth;
  /**
   * Device credentials kept by the broker itself (external broker). Absent: the broker asks
   * the manager (`DeviceAuthenticator`), as the embedded one does.
   */
  readonly accounts?: BrokerAccounts;
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
