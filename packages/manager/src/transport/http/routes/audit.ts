import { AuditEntry, AuditQuery, Page } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function auditRoutes(app: App, ctx: RouteContext): Promise<void> {
  app.get('/audit', {
    schema: {
      tags: ['audit'],
      summary: 'The audit log, newest first (admin): filter by actor, action (or prefix `user.`), target, outcome, since/until',
      querystring: AuditQuery,
      response: { 200: Page(AuditEntry) },
    },
    onRequest: ctx.guard('admin'),
  }, async (req) => ctx.audit.list(req.query));
}
