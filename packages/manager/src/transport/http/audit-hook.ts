import type { AuditOutcome } from '@pallas/protocol';
import type { AuditService } from '../../services/audit/audit-service.js';
import { actorOf } from './auth.js';
import type { App } from './context.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export const UNAUTHENTICATED_PER_MINUTE = 60;
const MAX_ADDRESSES = 10_000;

/**
 * At most UNAUTHENTICATED_PER_MINUTE refused anonymous records per address and minute; what
 * is left out is reported as one `audit.suppressed` record when the address next gets through.
 */
export class UnauthenticatedBudget {
  readonly #byIp = new Map<string, { minute: number; count: number; suppressed: number }>();

  take(ip: string, now = Date.now()): { allowed: boolean; suppressedBefore: number } {
    const minute = Math.floor(now / 60_000);
    let e = this.#byIp.get(ip);
    if (!e) {
      if (this.#byIp.size >= MAX_ADDRESSES) this.#byIp.clear();
      e = { minute, count: 0, suppressed: 0 };
      this.#byIp.set(ip, e);
    }
    if (e.minute !== minute) {
      e.minute = minute;
      e.count = 0;
    }
    if (e.count >= UNAUTHENTICATED_PER_MINUTE) {
      e.suppressed++;
      return { allowed: false, suppressedBefore: 0 };
    }
    e.count++;
    const suppressedBefore = e.suppressed;
    e.suppressed = 0;
    return { allowed: true, suppressedBefore };
  }
}

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
  const unauthenticated = new UnauthenticatedBudget();
  // The reason of a refused or failed call is the API error it answers with (`{error: {code,
  // message}}`, the one shape every error has): kept for its audit record.
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode >= 400 && !SAFE_METHODS.has(req.method) && typeof payload === 'string' && payload.length < 16_384) {
      try {
        const error = (JSON.parse(payload) as { error?: { code?: unknown; message?: unknown } }).error;
        if (error && typeof error.code === 'string') req.auditError = { code: error.code, message: typeof error.message === 'string' ? error.message : '' };
      } catch {
        // not JSON: no reason to keep
      }
    }
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    if (SAFE_METHODS.has(req.method)) return;
    const route = req.routeOptions.url;
    if (!route || !route.startsWith(prefix)) return;
    const explicit = req.audit?.action;
    if (!explicit && reply.statusCode === 401) return;
    const actor = actorOf(req);
    // Failed logins and enrollments come from callers nobody vouched for; bound what one
    // address can make us write, and say how much was left out.
    if (!req.user && reply.statusCode >= 400) {
      const verdict = unauthenticated.take(req.ip);
      if (verdict.suppressedBefore > 0) {
        await audit.record({
          actor: { kind: 'anonymous' }, action: 'audit.suppressed', outcome: 'denied', ip: req.ip,
          detail: { records: verdict.suppressedBefore, reason: `more than ${UNAUTHENTICATED_PER_MINUTE} refused anonymous calls a minute from this address` },
        });
      }
      if (!verdict.allowed) return;
    }
    await audit.record({
      actor,
      action: explicit ?? req.routeOptions.config.auditAction ?? `http.${req.method.toLowerCase()}`,
      target: req.audit?.target,
      outcome: outcomeOf(reply.statusCode),
      ip: req.ip,
      detail: { method: req.method, route, status: reply.statusCode, ...req.audit?.detail, ...(req.auditError ? { error: req.auditError } : {}) },
    });
  });
}
