import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function deviceRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listDevices', async (req) => ctx.devices.list(req.query));

  serve(app, ctx, 'getDevice', async (req) => ctx.devices.get(req.params.id));

  serve(app, ctx, 'updateDevice', async (req) => {
    req.audit = {
      action: req.body.name !== undefined ? 'device.rename' : 'device.update',
      target: { kind: 'device', id: req.params.id },
      detail: { ...req.body },
    };
    const device = await ctx.devices.patch(req.params.id, req.body);
    req.audit.target = { kind: 'device', id: device.id, name: device.name };
    return device;
  });

  // Device security (docs/security.md): approval, revocation, credential rotation.
  for (const [route, action] of [['approveDevice', 'approve'], ['blockDevice', 'block'], ['unblockDevice', 'unblock']] as const) {
    serve(app, ctx, route, async (req) => {
      req.audit = { target: { kind: 'device', id: req.params.id } };
      const device = await ctx.devices.setStatus(req.params.id, action);
      // The name too, so the audit log reads "blocked edge-berlin", not a bare id.
      req.audit.target = { kind: 'device', id: device.id, name: device.name };
      return device;
    });
  }

  serve(app, ctx, 'rotateDeviceCredential', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id } };
    const device = await ctx.devices.rotateCredential(req.params.id);
    req.audit.target = { kind: 'device', id: device.id, name: device.name };
    return device;
  });

  serve(app, ctx, 'decommissionDevice', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id } };
    await ctx.devices.decommission(req.params.id);
  });
}
