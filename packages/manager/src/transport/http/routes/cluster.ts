import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function clusterRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'clusterStatus', async () => ctx.cluster.status());
}
