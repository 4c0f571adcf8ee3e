import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { IdParam, PowerRequest, Task, TaskOptions, Vm, VmDeploy, VmPatch, VmSpec } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

const VmParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), vmId: Type.String({ minLength: 1, maxLength: 128 }) });

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
  const operator = ctx.guard('operator');

  app.get('/devices/:id/vms', {
    schema: { tags: ['vms'], summary: "List a device's VMs (its last reported inventory)", params: IdParam, response: { 200: Type.Array(Vm) } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => (await ctx.devices.get(req.params.id)).vms);

  app.post('/devices/:id/vms', {
    schema: { tags: ['vms'], summary: 'Create a VM (powered off): returns the task', params: IdParam, querystring: TaskOptions, body: VmSpec, response: { 202: Task } },
    onRequest: operator,
    config: { auditAction: 'vm.create' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { vm: req.body.name } };
    return reply.status(202).send(audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.create', spec: req.body }, { ...req.query, createdBy: req.user!.username })));
  });

  app.post('/devices/:id/vms/deploy', {
    schema: {
      tags: ['vms'],
      summary: 'Deploy a VM (powered off) from an OVA on the device: returns the task',
      description: '`source.path` is a file on the device, read by its agent; `name` defaults to the OVF\'s virtual system name.',
      params: IdParam,
      querystring: TaskOptions,
      body: VmDeploy,
      response: { 202: Task },
    },
    onRequest: operator,
    config: { auditAction: 'vm.deploy' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...(req.body.name === undefined ? {} : { vm: req.body.name }), source: req.body.source } };
    return reply.status(202).send(audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.deploy', ...req.body }, { ...req.query, createdBy: req.user!.username })));
  });

  app.post('/devices/:id/vms/:vmId/power', {
    schema: { tags: ['vms'], summary: 'Power a VM on, off, reset it or shut it down: returns the task', params: VmParams, querystring: TaskOptions, body: PowerRequest, response: { 202: Task } },
    onRequest: operator,
    config: { auditAction: 'vm.power' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id, action: req.body.action } };
    return reply.status(202).send(audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.power', vmId: req.params.vmId, action: req.body.action }, { ...req.query, createdBy: req.user!.username })));
  });

  app.patch('/devices/:id/vms/:vmId', {
    schema: { tags: ['vms'], summary: 'Rename a VM, or change its vCPUs and memory while it is off: returns the task', params: VmParams, querystring: TaskOptions, body: VmPatch, response: { 202: Task } },
    onRequest: operator,
    config: { auditAction: 'vm.update' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id, ...req.body } };
    return reply.status(202).send(audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.update', vmId: req.params.vmId, patch: req.body }, { ...req.query, createdBy: req.user!.username })));
  });

  app.delete('/devices/:id/vms/:vmId', {
    schema: { tags: ['vms'], summary: 'Delete a powered-off VM and its disks: returns the task', params: VmParams, querystring: TaskOptions, response: { 202: Task } },
    onRequest: operator,
    config: { auditAction: 'vm.delete' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'vm', id: req.params.vmId }, detail: { device: req.params.id } };
    return reply.status(202).send(audited(req, await ctx.tasks.create(req.params.id, { kind: 'vm.delete', vmId: req.params.vmId }, { ...req.query, createdBy: req.user!.username })));
  });
}
