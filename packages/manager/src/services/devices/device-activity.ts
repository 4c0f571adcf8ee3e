import type { Presence, PresenceMessage } from '@pallas/protocol';
import type { Service } from '../../lifecycle.js';
import type { Db, Store } from '../../store/store.js';
import type { EventBus } from '../live/event-bus.js';
import type { TaskOutbox } from '../tasks/task-outbox.js';
import type { OnlineDevices } from './online-devices.js';

/**
 * Turns what devices report into what the rest of the manager reacts to at once: a device that
 * comes online gets its pending tasks, and the live stream hears of presence changes (the
 * store catches up through the status buffer a moment later). The VM list is DeviceInventory's.
 *
 * Every presence event carries the device's last contact (`lastSeenAt`), never the time the
 * manager noticed a change: a last will or a sweep says when the device went quiet, not when.
 */
export class DeviceActivity implements Service {
  readonly name = 'device activity';
  readonly #online: OnlineDevices;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  readonly #db: Db;
  /** The presence last announced on the live stream per device, so an `offline` goes out once. */
  readonly #announced = new Map<string, Presence>();
  /** When this manager last received a message of each device (its own clock). */
  readonly #heard = new Map<string, string>();

  /** An external broker, which several managers may share (each gets a share of a device's messages). */
  readonly #sharedBroker: boolean;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: { online: OnlineDevices; outbox: TaskOutbox; events: EventBus; store: Store; sharedBroker?: boolean }) {
    this.#sharedBroker = deps.sharedBroker ?? false;
    this.#online = deps.online;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
    this.#db = deps.store.write;
  }

  async start(): Promise<void> {
    // The unresponsive sweep runs on one manager; with several, the device's next message may
    // reach another, which must know to announce it online again. Each one hears it here.
    this.#unsubscribe = this.#events.subscribe(({ event }) => {
      if (event.type === 'device' && event.device.presence === 'unresponsive') this.#heardUnresponsive(event.device.id, event.device.lastSeenAt);
    }, (type) => type === 'device');
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /**
   * A presence message this manager handles: it alone re-sends the device's tasks and tells
   * the live stream (with several managers, one of them gets each message: docs/scale-out.md).
   * `receivedAt` is absent for a last will: the broker published it, the device said nothing.
   */
  presence(deviceId: string, state: PresenceMessage['state'], receivedAt: string | undefined): void {
    this.observed(deviceId, state);
    if (receivedAt !== undefined) this.#heard.set(deviceId, receivedAt);
    if (state === 'online') {
      // Every `online` is a new connection whose predecessor may have lost commands: redeliver.
      void this.#outbox.deviceOnline(deviceId);
      this.#announce(deviceId, 'online', receivedAt ?? new Date().toISOString());
    } else if (this.#announced.get(deviceId) !== 'offline') {
      this.#announceOffline(deviceId, receivedAt);
    }
  }

  /**
   * A presence message seen by every manager (external broker), so that each one's view of
   * who can receive commands now is right; nothing else happens here.
   */
  observed(deviceId: string, state: PresenceMessage['state']): void {
    if (state === 'online') this.#online.markOnline(deviceId);
    else this.#online.markOffline(deviceId);
  }

  status(deviceId: string, at: string): void {
    this.#heard.set(deviceId, at);
    // A status from a device we did not know was online (its presence was lost, or the manager
    // restarted under an external broker) counts as coming online.
    if (this.#online.markOnline(deviceId)) {
      void this.#outbox.deviceOnline(deviceId);
      this.#announce(deviceId, 'online', at);
    } else if (this.#announced.get(deviceId) === 'unresponsive') {
      // Same connection, awake again: its commands were waiting in the session, nothing to re-send.
      this.#announce(deviceId, 'online', at);
    }
  }

  /** The sweep found the device silent past its bound (unresponsive-sweep.ts): on every manager's stream. */
  unresponsive(deviceId: string, lastSeenAt: string | null): void {
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'unresponsive', lastSeenAt } });
  }

  /** The device was blocked and cut off, or went silent: offline at once, on every manager's stream. */
  cutOff(deviceId: string, lastSeenAt: string | null): void {
    this.#online.markOffline(deviceId);
    if (this.#announced.get(deviceId) === 'offline') return;
    this.#announced.set(deviceId, 'offline');
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt } });
  }

  removed(deviceId: string): void {
    this.#online.markOffline(deviceId);
    this.#announced.delete(deviceId);
    this.#heard.delete(deviceId);
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt: null, removed: true } });
  }

  #announce(deviceId: string, presence: Presence, at: string | null): void {
    this.#announced.set(deviceId, presence);
    this.#events.emit({ type: 'device', device: { id: deviceId, presence, lastSeenAt: at } });
  }

  /**
   * Offline, with the device's last contact. Alone on its broker, this manager received every
   * message of the device and knows it; with several (a shared subscription spreads a device's
   * messages over them) the store knows the latest one written, and this manager may hold a
   * later one not written yet: the later of the two.
   */
  #announceOffline(deviceId: string, receivedAt: string | undefined): void {
    this.#announced.set(deviceId, 'offline');
    const heard = receivedAt ?? this.#heard.get(deviceId);
    if (heard !== undefined && (receivedAt !== undefined || !this.#sharedBroker)) return this.#emitOffline(deviceId, heard);
    const later = (stored: string | null | undefined) => (heard !== undefined && (!stored || heard > stored) ? heard : stored ?? null);
    this.#db.selectFrom('devices').select('last_seen_at').where('id', '=', deviceId).executeTakeFirst().then(
      (row) => { if (this.#announced.get(deviceId) === 'offline') this.#emitOffline(deviceId, later(row?.last_seen_at)); },
      () => { if (this.#announced.get(deviceId) === 'offline') this.#emitOffline(deviceId, later(null)); },
    );
  }

  #emitOffline(deviceId: string, lastSeenAt: string | null): void {
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt } });
  }

  /**
   * A device was marked unresponsive. If this manager received a message of it after the
   * sweep read the store (the message was still in a status buffer), it is back already.
   */
  #heardUnresponsive(deviceId: string, lastSeenAt: string | null): void {
    this.#announced.set(deviceId, 'unresponsive');
    const heard = this.#heard.get(deviceId);
    if (heard !== undefined && (lastSeenAt === null || heard > lastSeenAt)) this.#announce(deviceId, 'online', heard);
  }
}
