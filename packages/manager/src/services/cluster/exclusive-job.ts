import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { Leases } from './leases.js';

/**
 * Periodic work that must run on one manager at a time (the deadline sweep, stranded tasks,
 * audit pruning): every `intervalMs` the job takes or renews its lease and runs only if it
 * holds it. The lease lasts several intervals, so a holder that dies is replaced within
 * `ttlMs`, and a holder that is only slow keeps it. With one manager it simply always runs.
 */
export class ExclusiveJob implements Service {
  readonly name: string;
  readonly #leases: Leases;
  readonly #run: () => Promise<unknown>;
  readonly #intervalMs: number;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #held = false;

  constructor(opts: { name: string; leases: Leases; run: () => Promise<unknown>; intervalMs: number; ttlMs?: number; logger: Logger }) {
    this.name = opts.name;
    this.#leases = opts.leases;
    this.#run = opts.run;
    this.#intervalMs = opts.intervalMs;
    this.#ttlMs = opts.ttlMs ?? Math.max(5_000, opts.intervalMs * 3);
    this.#logger = opts.logger;
  }

  /** True while this manager holds the job's lease (as of its last tick). */
  get held(): boolean {
    return this.#held;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    if (this.#held) await this.#leases.release(this.name).catch(() => {});
    this.#held = false;
  }

  /** One round: take or renew the lease, run if held. Rounds never overlap. */
  tick(): Promise<void> {
    this.#running ??= this.#round().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #round(): Promise<void> {
    try {
      const held = await this.#leases.acquire(this.name, this.#ttlMs);
      if (held !== this.#held) this.#logger.info({ job: this.name }, held ? 'this manager runs the job now' : 'another manager runs the job now');
      this.#held = held;
      if (held) await this.#run();
    } catch (err) {
      this.#logger.error({ err, job: this.name }, 'periodic job failed');
    }
  }
}
