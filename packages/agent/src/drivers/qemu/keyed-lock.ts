/**
 * One operation at a time per key (a VM id, or the catalog of names): a power-off must not run
 * while a delete of the same VM is halfway, but two VMs' operations run side by side. Waiting
 * ends early when the signal aborts; the queue moves on regardless.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      await waitOrAbort(previous, signal);
      return await fn();
    } finally {
      release();
      // Forget the key once nobody queues behind us, so the map does not grow with every VM ever seen.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

function waitOrAbort(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
