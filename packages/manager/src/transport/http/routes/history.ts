import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/** History kept by the manager (docs/history.md): a device's series and the fleet's. */
export async function historyRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'getDeviceHistory', async (req) => ctx.history.device(req.params.id, req.query));
  serve(app, ctx, 'fleetHistory', async (req) => ctx.history.fleet(req.query));
}
