import type { Presence } from '@pallas/protocol';
import type { EventBus } from '../live/event-bus.js';
import type { TaskOutbox } from '../tasks/task-outbox.js';
import type { OnlineDevices } from './online-devices.js';

/**
 * Turns what devices report into what the rest of the manager reacts to at once: a device that
 * comes online gets its pending tasks, and the live stream hears of presence changes (the
 * store catches up through the status buffer a moment later). The VM list is DeviceInventory's.
 */
export class DeviceActivity {
  readonly #online: OnlineDevices;
  readonly #outbox: TaskOutbox;
  readonly #events: EventBus;
  /** The presence last announced on the live stream per device, so an `offline` goes out once. */
  readonly #announced = new Map<string, Presence>();

  constructor(deps: { online: OnlineDevices; outbox: TaskOutbox; events: EventBus }) {
    this.#online = deps.online;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
  }

  /**
   * A presence message this manager handles: it alone re-sends the device's tasks and tells
   * the live stream (with several managers, one of them gets each message: docs/scale-out.md).
   */
  presence(deviceId: string, state: Presence, at: string): void {
    this.observed(deviceId, state);
    if (state === 'online') {
      // Every `online` is a new connection whose predecessor may have lost commands: redeliver.
      void this.#outbox.deviceOnline(deviceId);
      this.#announce(deviceId, 'online', at);
    } else if (this.#announced.get(deviceId) !== 'offline') {
      this.#announce(deviceId, 'offline', at);
    }
  }

  /**
   * A presence message seen by every manager (external broker), so that each one's view of
   * who can receive commands now is right; nothing else happens here.
   */
  observed(deviceId: string, state: Presence): void {
    if (state === 'online') this.#online.markOnline(deviceId);
    else this.#online.markOffline(deviceId);
  }

  #announce(deviceId: string, presence: Presence, at: string): void {
    this.#announced.set(deviceId, presence);
    this.#events.emit({ type: 'device', device: { id: deviceId, presence, lastSeenAt: at } });
  }

  status(deviceId: string, at: string): void {
    // A status from a device we did not know was online (its presence was lost, or the manager
    // restarted under an external broker) counts as coming online.
    if (this.#online.markOnline(deviceId)) {
      void this.#outbox.deviceOnline(deviceId);
      this.#announce(deviceId, 'online', at);
    }
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
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt: null, removed: true } });
  }
}
