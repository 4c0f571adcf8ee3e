import Type from 'typebox';
import { IdParam, PowerRequest, Task, TaskOptions, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

const VmParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), vmId: Type.String({ minLength: 1, maxLength: 128 }) });

/**
 * VMs of one device. Reads come from the manager's copy of the device's inventory; every
 * change is a task (202 with the task), which the device runs when it is online.
 */
export async function vmRoutes(app: App, ctx: RouteContext): Promise<void> {
  const operator = ctx.guard('operator');

  app.get('/devices/:id/vms', {
    schema: { tags: ['vms'], summary: "List a device's VMs (its last reported inventory)", params: IdParam, response: { 200: Type.Array(Vm) } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => (await ctx.devices.get(req.params.id)).vms);

  app.post('/devices/:id/vms', {
    schema: { tags: ['vms'], summary: 'Create a VM (powered off): returns the task', params: IdParam, querystring: TaskOptions, body: VmSpec, response: { 202: Task } },
    onRequest: operator,
  }, async (req, reply) => reply.status(202).send(
    await ctx.tasks.create(req.params.id, { kind: 'vm.create', spec: req.body }, { ...req.query, createdBy: req.user!.username }),
  ));

  app.post('/devices/:id/vms/:vmId/power', {
    schema: { tags: ['vms'], summary: 'Power a VM on, off, reset it or shut it down: returns the task', params: VmParams, querystring: TaskOptions, body: PowerRequest, response: { 202: Task } },
    onRequest: operator,
  }, async (req, reply) => reply.status(202).send(
    await ctx.tasks.create(req.params.id, { kind: 'vm.power', vmId: req.params.vmId, action: req.body.action }, { ...req.query, createdBy: req.user!.username }),
  ));

  app.patch('/devices/:id/vms/:vmId', {
    schema: { tags: ['vms'], summary: 'Rename a VM, or change its vCPUs and memory while it is off: returns the task', params: VmParams, querystring: TaskOptions, body: VmPatch, response: { 202: Task } },
    onRequest: operator,
  }, async (req, reply) => reply.status(202).send(
    await ctx.tasks.create(req.params.id, { kind: 'vm.update', vmId: req.params.vmId, patch: req.body }, { ...req.query, createdBy: req.user!.username }),
  ));

  app.delete('/devices/:id/vms/:vmId', {
    schema: { tags: ['vms'], summary: 'Delete a powered-off VM and its disks: returns the task', params: VmParams, querystring: TaskOptions, response: { 202: Task } },
    onRequest: operator,
  }, async (req, reply) => reply.status(202).send(
    await ctx.tasks.create(req.params.id, { kind: 'vm.delete', vmId: req.params.vmId }, { ...req.query, createdBy: req.user!.username }),
  ));
}
