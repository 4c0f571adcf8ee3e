import type { StatusMessage } from '@pallas/protocol';
import type { Logger } from '../util/line-logger.js';
import { checkStatusMessage } from '../checks/index.js';
import type { Driver } from '../drivers/driver.js';
import { isDriverError } from '../drivers/driver-error.js';
import { describeError } from '../errors.js';
import { AGENT_VERSION } from '../version.js';

export interface StatusReporterOptions {
  driver: Driver;
  /** Sends a built message (QoS 1). Errors are logged, not thrown. */
  publish: (message: StatusMessage) => Promise<void>;
  intervalSec: number;
  logger: Logger;
  /** When the agent started; its uptime is reported from here. Default: now. */
  startedAt?: number;
  /** Source of randomness for the timer phase. Default Math.random. */
  random?: () => number;
  /**
   * How long `reportNow()` waits, gathering a burst of calls into one report. Default 3 s: the
   * manager applies each task's result to its copy of the inventory at once, so this report
   * only brings the host's totals (memory, datastores) and changes made outside Pallas up to
   * date. Waiting lets a device working through a window of tasks send one report, not one
   * per task, and keeps a fan-out's reports out of the way of its results.
   */
  reportNowDelayMs?: number;
  /** Called after each report the broker acknowledged (self-update counts that as healthy). */
  onReported?: () => void;
}

/**
 * Publishes a StatusMessage right after each connect and then every `intervalSec` while
 * online. Nothing is sent while offline: a status is a snapshot, and a backlog of stale
 * ones after hours offline would only cost the manager work.
 *
 * The first periodic report comes after a random delay in [interval/2, interval], so agents
 * that connected in the same instant (a broker restart, a fleet simulator) spread out.
 */
export class StatusReporter {
  readonly #opts: Readonly<StatusReporterOptions>;
  readonly #startedAt: number;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: StatusReporterOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#startedAt = options.startedAt ?? Date.now();
  }

  /** Builds the next message and checks it against the protocol schema (throws if invalid). */
  async build(): Promise<StatusMessage> {
    const { driver } = this.#opts;
    const [facts, vms] = await Promise.all([driver.hostFacts(), driver.listVms()]);
    const message: StatusMessage = {
      seq: this.#seq,
      sentAt: new Date().toISOString(),
      facts: { ...facts, agentVersion: AGENT_VERSION, agentUptimeSec: Math.floor((Date.now() - this.#startedAt) / 1000) },
      vms,
    };
    // Our own message failing the schema is a bug in the agent or a driver; better loud here
    // than silently dropped by the manager.
    const res = await checkStatusMessage.validate(message);
    if (!res.ok) throw new Error(`status message does not match the protocol: ${res.error}`);
    this.#seq++;
    return message;
  }

  /** The link came up: report now, then periodically. */
  online(): void {
    this.offline();
    this.#running = true;
    void this.#report();
    const intervalMs = this.#opts.intervalSec * 1000;
    const random = this.#opts.random ?? Math.random;
    const firstMs = Math.round(intervalMs / 2 + random() * (intervalMs / 2));
    this.#timer = setTimeout(() => {
      this.#timer = setInterval(() => void this.#report(), intervalMs);
      void this.#report();
    }, firstMs);
  }

  /**
   * The inventory changed (a task ended): report shortly, outside the periodic schedule, so the
   * manager sees the change at once. Calls within `reportNowDelayMs` give one report, built
   * after the last of them. Nothing while offline: the next connect reports anyway.
   */
  reportNow(): void {
    if (!this.#running || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.#report();
    }, this.#opts.reportNowDelayMs ?? 3000);
  }

  /** The link went down (or the agent stops): no more reports until the next `online()`. */
  offline(): void {
    this.#running = false;
    // clearTimeout also clears an interval: Node shares the timer id space.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#soon);
    this.#soon = undefined;
  }

  async #report(): Promise<void> {
    try {
      const message = await this.build();
      if (!this.#running) return;
      await this.#opts.publish(message);
      this.#opts.onReported?.();
    } catch (err) {
      // A publish cut short by a disconnect or a stop is expected. A hypervisor that cannot be
      // reached (an ESXi host rebooting, a wrong password) skips this report: the agent stays
      // connected and reports again once the host answers. Anything else is a bug.
      if (this.#running && isDriverError(err, 'unavailable')) this.#opts.logger.warn({ err: describeError(err) }, 'status report skipped: the host is unavailable');
      else if (this.#running) this.#opts.logger.error({ err: describeError(err) }, 'status report failed');
      else this.#opts.logger.debug({ err: describeError(err) }, 'status report abandoned');
    }
  }
}
