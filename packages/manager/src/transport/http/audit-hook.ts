import type { AuditOutcome } from '@pallas/protocol';
import type { AuditService } from '../../services/audit/audit-service.js';
import { actorOf } from './auth.js';
import type { App } from './context.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  return status === 401 || status === 403 || status === 429 ? 'denied' : 'failed';
}

/**
 * Writes one audit record for every state-changing API call, after the response is sent:
 * the route's action name (`config.auditAction`, or what the handler set in `req.audit`),
 * its target, the caller, the address, and the outcome from the status. Reads are not
 * audited. Anonymous calls refused with 401 are not written either (a stranger could
 * otherwise fill the log at line rate) unless the route named them, like `login.failed`.
 */
export function registerAuditHook(app: App, audit: AuditService, prefix: string): void {
  app.addHook('onResponse', async (req, reply) => {
    if (SAFE_METHODS.has(req.method)) return;
    const route = req.routeOptions.url;
    if (!route || !route.startsWith(prefix)) return;
    const explicit = req.audit?.action;
    if (!explicit && reply.statusCode === 401) return;
    await audit.record({
      actor: actorOf(req),
      action: explicit ?? req.routeOptions.config.auditAction ?? `http.${req.method.toLowerCase()}`,
      target: req.audit?.target,
      outcome: outcomeOf(reply.statusCode),
      ip: req.ip,
      detail: { method: req.method, route, status: reply.statusCode, ...req.audit?.detail },
    });
  });
}
