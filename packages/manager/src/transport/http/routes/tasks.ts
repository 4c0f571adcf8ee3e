import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function taskRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listTasks', async (req) => ctx.tasks.list(req.query));

  serve(app, ctx, 'createBulkTask', async (req) => {
    const res = await ctx.tasks.createBulk(req.body, req.user!.username);
    req.audit = { detail: { operation: req.body.operation.kind, tag: req.body.tag ?? null, devices: req.body.deviceIds?.length ?? null, tasks: res.count, firstTask: res.taskIds[0] ?? null } };
    return res;
  });

  serve(app, ctx, 'getTask', async (req) => ctx.tasks.get(req.params.id));

  serve(app, ctx, 'cancelTask', async (req) => {
    req.audit = { target: { kind: 'task', id: req.params.id } };
    return ctx.tasks.cancel(req.params.id, req.user!.username);
  });

  serve(app, ctx, 'retryTask', async (req) => {
    req.audit = { target: { kind: 'task', id: req.params.id } };
    const task = await ctx.tasks.retry(req.params.id, req.user!.username);
    req.audit.detail = { newTask: task.id };
    return task;
  });
}
