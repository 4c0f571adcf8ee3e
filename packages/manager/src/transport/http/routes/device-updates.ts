import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/**
 * Changes to the device itself rather than its VMs: a patch of its hypervisor and a new
 * version of its agent. Each is a task (202 with the task), audited with the artifact it uses.
 */
export async function deviceUpdateRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'updateAgent', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...req.body } };
    const task = await ctx.tasks.create(req.params.id, { kind: 'agent.update', ...req.body }, { ...req.query, createdBy: req.user!.username });
    req.audit = { ...req.audit, detail: { ...req.audit.detail, task: task.id } };
    return task;
  });

  serve(app, ctx, 'patchDeviceHost', async (req) => {
    req.audit = { target: { kind: 'device', id: req.params.id }, detail: { ...req.body } };
    const task = await ctx.tasks.create(req.params.id, { kind: 'device.patch', ...req.body }, { ...req.query, createdBy: req.user!.username });
    req.audit = { ...req.audit, detail: { ...req.audit.detail, task: task.id } };
    return task;
  });
}
