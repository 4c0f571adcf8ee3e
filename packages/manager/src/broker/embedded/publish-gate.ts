/**
 * At most `limit` of the manager's own publishes inside Aedes at once; the rest wait here, in
 * order.
 *
 * Why: Aedes hands every message to its emitter (mqemitter), which runs 100 at a time and
 * queues the rest. Its queue is drained recursively: a queued message whose delivery finishes
 * at once (no subscriber, or the manager's own in-process handler) starts the next on the same
 * stack. A fan-out to 10,000 devices published without waiting for each put thousands in that
 * queue behind the deliveries still waiting for devices' sockets, and the manager died of
 * "Maximum call stack size exceeded" (broker contract test "takes the manager's burst…").
 * The manager's publishes are the only deliveries that wait (devices publish only to the
 * manager's handlers), so keeping them below the emitter's concurrency keeps its queue empty.
 */
export class PublishGate {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`publish gate limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  /** Runs `publish` once a place is free; settles as it does. */
  async run<T>(publish: () => Promise<T>): Promise<T> {
    if (this.#active < this.#limit) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // place handed over by #release
    try {
      return await publish();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }
}
