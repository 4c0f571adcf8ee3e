import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function fleetRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'fleetSummary', async () => ctx.fleet.summary());
  serve(app, ctx, 'fleetFailingDevices', async (req) => ctx.fleet.failingDevices(req.query));
}
