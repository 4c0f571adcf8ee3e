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

  constructor(deps: { online: OnlineDevices; outbox: TaskOutbox; events: EventBus }) {
    this.#online = deps.online;
    this.#outbox = deps.outbox;
    this.#events = deps.events;
  }

  presence(deviceId: string, state: Presence, at: string): void {
    if (state === 'online') {
      this.#online.markOnline(deviceId);
      // Every `online` is a new connection whose predecessor may have lost commands: redeliver.
      void this.#outbox.deviceOnline(deviceId);
      this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'online', lastSeenAt: at } });
    } else if (this.#online.markOffline(deviceId)) {
      this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt: at } });
    }
  }

  status(deviceId: string, at: string): void {
    // A status from a device we did not know was online (its presence was lost, or the manager
    // restarted under an external broker) counts as coming online.
    if (this.#online.markOnline(deviceId)) {
      void this.#outbox.deviceOnline(deviceId);
      this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'online', lastSeenAt: at } });
    }
  }

  removed(deviceId: string): void {
    this.#online.markOffline(deviceId);
    this.#events.emit({ type: 'device', device: { id: deviceId, presence: 'offline', lastSeenAt: null, removed: true } });
  }
}
