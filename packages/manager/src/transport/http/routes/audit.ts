import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function auditRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listAudit', async (req) => ctx.audit.list(req.query));
}
