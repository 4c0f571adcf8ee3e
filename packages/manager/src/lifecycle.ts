import type { Logger } from 'pino';

/**
 * A part of the manager with a lifecycle: the constructor only assigns, `start()` does the
 * work (opens, listens, subscribes, arms timers), `stop()` undoes it and must be safe to call
 * after a `start()` that failed half-way.
 */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The manager's services in start order. `start()` starts those not started yet, in the order
 * they were added (so a caller may start a first few, use them, add more and start again);
 * `stop()` stops the started ones in reverse order, logging an error and going on rather
 * than throwing, so one failing stop does not leave the rest running.
 */
export class Services {
  readonly #logger: Logger;
  readonly #added: Service[] = [];
  readonly #started: Service[] = [];

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  add(...services: Service[]): this {
    this.#added.push(...services);
    return this;
  }

  /** On a failure, stops what it started (the failing one included) and throws. */
  async start(): Promise<void> {
    for (const service of this.#added.slice(this.#started.length)) {
      this.#started.push(service);
      try {
        await service.start();
      } catch (err) {
        await this.stop();
        throw err;
      }
    }
  }

  async stop(): Promise<void> {
    for (let service = this.#started.pop(); service; service = this.#started.pop()) {
      await service.stop().catch((err: unknown) => this.#logger.error({ err, service: service!.name }, 'error while stopping'));
    }
  }
}
