/**
 * Which devices can receive commands right now, as the manager saw last: a device is online
 * from its `presence: online` message (which the agent sends only once its command
 * subscription is in place) or a status message, until its `offline` presence or last will.
 * In memory on purpose: after a manager restart nobody is online until they say so again.
 */
export class OnlineDevices {
  readonly #online = new Set<string>();

  /** True when the device was not online before. */
  markOnline(deviceId: string): boolean {
    if (this.#online.has(deviceId)) return false;
    this.#online.add(deviceId);
    return true;
  }

  /** True when the device was online before. */
  markOffline(deviceId: string): boolean {
    return this.#online.delete(deviceId);
  }

  /** Replaces the whole view (after this manager missed presence messages: docs/scale-out.md). */
  replaceAll(deviceIds: Iterable<string>): void {
    this.#online.clear();
    for (const id of deviceIds) this.#online.add(id);
  }

  isOnline(deviceId: string): boolean {
    return this.#online.has(deviceId);
  }

  get size(): number {
    return this.#online.size;
  }
}
