import { Device, DevicePatch, DeviceQuery, IdParam, Page } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function deviceRoutes(app: App, ctx: RouteContext): Promise<void> {
  app.get('/devices', {
    schema: { tags: ['devices'], summary: 'List devices (paged; filter by presence, status, name, tag, hypervisor)', querystring: DeviceQuery, response: { 200: Page(Device) } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => ctx.devices.list(req.query));

  app.get('/devices/:id', {
    schema: { tags: ['devices'], summary: 'Get a device with its host facts and VMs', params: IdParam, response: { 200: Device } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => ctx.devices.get(req.params.id));

  app.patch('/devices/:id', {
    schema: { tags: ['devices'], summary: 'Rename or re-tag a device', params: IdParam, body: DevicePatch, response: { 200: Device } },
    onRequest: ctx.guard('operator'),
  }, async (req) => {
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
  for (const [action, summary] of [
    ['approve', 'Approve a pending device (with --require-approval): it may connect from now on'],
    ['block', 'Block a device: its connection is closed at once and its credential refused until unblocked'],
    ['unblock', 'Unblock a blocked device'],
  ] as const) {
    app.post(`/devices/:id/${action}`, {
      schema: { tags: ['devices'], summary, params: IdParam, response: { 200: Device } },
      onRequest: ctx.guard('operator'),
      config: { auditAction: `device.${action}` },
    }, async (req) => {
      req.audit = { target: { kind: 'device', id: req.params.id } };
      const device = await ctx.devices.setStatus(req.params.id, action);
      // The name too, so the audit log reads "blocked edge-berlin", not a bare id.
      req.audit.target = { kind: 'device', id: device.id, name: device.name };
      return device;
    });
  }

  app.post('/devices/:id/rotate-credential', {
    schema: { tags: ['devices'], summary: 'Send the device a new credential; the old one works until the device connects with the new one', params: IdParam, response: { 200: Device } },
    onRequest: ctx.guard('operator'),
    config: { auditAction: 'device.rotate-credential' },
  }, async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id } };
    const device = await ctx.devices.rotateCredential(req.params.id);
    req.audit.target = { kind: 'device', id: device.id, name: device.name };
    return device;
  });

  app.delete('/devices/:id', {
    schema: { tags: ['devices'], summary: 'Decommission a device: its credential stops working and its agent stops', params: IdParam },
    onRequest: ctx.guard('operator'),
    config: { auditAction: 'device.decommission' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'device', id: req.params.id } };
    await ctx.devices.decommission(req.params.id);
    return reply.status(204).send();
  });
}
