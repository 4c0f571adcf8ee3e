import type { Logger } from 'pino';
import type { AuditService } from './audit-service.js';

/** Deletes audit entries older than the retention; run as an exclusive job (app.ts), hourly. */
export class AuditPruner {
  readonly #audit: AuditService;
  readonly #retentionDays: number;
  readonly #logger: Logger;

  constructor(deps: { audit: AuditService; retentionDays: number; logger: Logger }) {
    this.#audit = deps.audit;
    this.#retentionDays = deps.retentionDays;
    this.#logger = deps.logger;
  }

  /** One pass; a failure is logged, never thrown (the next hour tries again). */
  async prune(): Promise<void> {
    const n = await this.#audit.prune(this.#retentionDays).catch((err: unknown) => {
      this.#logger.error({ err }, 'audit log pruning failed');
      return 0;
    });
    if (n > 0) this.#logger.info({ deleted: n, retentionDays: this.#retentionDays }, 'pruned the audit log');
  }
}
