import { FleetSummary } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function fleetRoutes(app: App, ctx: RouteContext): Promise<void> {
  app.get('/fleet/summary', {
    schema: { tags: ['fleet'], summary: 'Device counts by presence, hypervisor and agent version; task counts by state', response: { 200: FleetSummary } },
    onRequest: ctx.guard('viewer'),
  }, async () => ctx.fleet.summary());
}
