import type { FastifyRequest } from 'fastify';
import type { Task } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/** Adds the task a VM change became to the request's audit record. */
function audited(req: FastifyRequest, task: Task): Task {
  req.audit = { ...req.audit, detail: { ...req.audit?.detail, task: task.id } };
  return task;
}

/**
 * VMs of one device. Reads come from the manager's copy of the device's inventory; every
 * change is a task (202 with the task), which the device runs when it is online.
 */
export async function vmRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listVms', async (req) => (await ctx.devices.get(req.params.id)).vms);

  serve(app, ctx, 'createVm', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { vm: req.body.name } };
    return audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.create', spec: req.body }, { ...req.query, createdBy: req.user!.username }));
  });

  serve(app, ctx, 'deployVm', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...(req.body.name === undefined ? {} : { vm: req.body.name }), source: req.body.source } };
    return audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.deploy', ...req.body }, { ...req.query, createdBy: req.user!.username }));
  });

  serve(app, ctx, 'powerVm', async (req) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id, action: req.body.action } };
    return audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.power', vmId: req.params.vmId, action: req.body.action }, { ...req.query, createdBy: req.user!.username }));
  });

  serve(app, ctx, 'updateVm', async (req) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id, ...req.body } };
    return audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.update', vmId: req.params.vmId, patch: req.body }, { ...req.query, createdBy: req.user!.username }));
  });

  serve(app, ctx, 'deleteVm', async (req) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id } };
    return audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.delete', vmId: req.params.vmId }, { ...req.query, createdBy: req.user!.username }));
  });
}
