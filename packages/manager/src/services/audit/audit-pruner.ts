import type { Logger } from 'pino';
import type { Service } from '../../lifecycle.js';
import type { AuditService } from './audit-service.js';

const DAY_MS = 86_400_000;

/** Deletes audit entries older than the retention: once at start, then once a day. */
export class AuditPruner implements Service {
  readonly name = 'audit pruning';
  readonly #audit: AuditService;
  readonly #retentionDays: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: { audit: AuditService; retentionDays: number; logger: Logger }) {
    this.#audit = deps.audit;
    this.#retentionDays = deps.retentionDays;
    this.#logger = deps.logger;
  }

  async start(): Promise<void> {
    await this.prune();
    this.#timer = setInterval(() => void this.prune(), DAY_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass; a failure is logged, never thrown (the next day tries again). */
  async prune(): Promise<void> {
    const n = await this.#audit.prune(this.#retentionDays).catch((err: unknown) => {
      this.#logger.error({ err }, 'audit log pruning failed');
      return 0;
    });
    if (n > 0) this.#logger.info({ deleted: n, retentionDays: this.#retentionDays }, 'pruned the audit log');
  }
}
