import { AgentUpdateRequest, DevicePatchRequest, IdParam, Task, TaskOptions } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

/**
 * Changes to the device itself rather than its VMs: a patch of its hypervisor and a new
 * version of its agent. Each is a task (202 with the task), audited with the artifact it uses.
 */
export async function deviceUpdateRoutes(app: App, ctx: RouteContext): Promise<void> {
  const operator = ctx.guard('operator');

  app.post('/devices/:id/agent-update', {
    schema: {
      tags: ['devices'],
      summary: "Update the device's agent from an `agent` artifact: returns the task",
      description:
        'The agent downloads and checks the bundle, restarts into it under its supervisor, and rolls back to the running version by itself unless the new one reconnects and reports healthy within `healthySec` (default 120). The task succeeds once the new version has committed; it fails with `rolled_back` and the reason otherwise. See docs/agent-update.md.',
      params: IdParam,
      querystring: TaskOptions,
      body: AgentUpdateRequest,
      response: { 202: Task },
    },
    onRequest: operator,
    config: { auditAction: 'device.agent-update' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...req.body } };
    const task = await ctx.tasks.create(req.params.id, { kind: 'agent.update', ...req.body }, { ...req.query, createdBy: req.user!.username });
    req.audit = { ...req.audit, detail: { ...req.audit.detail, task: task.id } };
    return reply.status(202).send(task);
  });

  app.post('/devices/:id/patch', {
    schema: {
      tags: ['devices'],
      summary: "Apply a `patch` artifact to the device's hypervisor: returns the task",
      description: 'Through the device driver, where the hypervisor supports it (`sim` does; `qemu` and `esxi` fail the task with `unsupported`, saying why). See docs/drivers.md.',
      params: IdParam,
      querystring: TaskOptions,
      body: DevicePatchRequest,
      response: { 202: Task },
    },
    onRequest: operator,
    config: { auditAction: 'device.patch' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...req.body } };
    const task = await ctx.tasks.create(req.params.id, { kind: 'device.patch', ...req.body }, { ...req.query, createdBy: req.user!.username });
    req.audit = { ...req.audit, detail: { ...req.audit.detail, task: task.id } };
    return reply.status(202).send(task);
  });
}
