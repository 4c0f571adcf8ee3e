import { BulkTaskRequest, BulkTaskResponse, IdParam, Page, Task, TaskQuery } from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function taskRoutes(app: App, ctx: RouteContext): Promise<void> {
  const operator = ctx.guard('operator');

  app.get('/tasks', {
    schema: { tags: ['tasks'], summary: 'List tasks, newest first (filter by device, VM, state, kind)', querystring: TaskQuery, response: { 200: Page(Task) } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => ctx.tasks.list(req.query));

  app.post('/tasks', {
    schema: { tags: ['tasks'], summary: 'Run one operation on many devices (a list of ids, or every device with a tag)', body: BulkTaskRequest, response: { 202: BulkTaskResponse } },
    onRequest: operator,
    config: { auditAction: 'task.create' },
  }, async (req, reply) => {
    const res = await ctx.tasks.createBulk(req.body, req.user!.username);
    req.audit = { detail: { operation: req.body.operation.kind, tag: req.body.tag ?? null, devices: req.body.deviceIds?.length ?? null, tasks: res.count, firstTask: res.taskIds[0] ?? null } };
    return reply.status(202).send(res);
  });

  app.get('/tasks/:id', {
    schema: { tags: ['tasks'], summary: 'Get a task', params: IdParam, response: { 200: Task } },
    onRequest: ctx.guard('viewer'),
  }, async (req) => ctx.tasks.get(req.params.id));

  app.post('/tasks/:id/cancel', {
    schema: { tags: ['tasks'], summary: 'Cancel a task (at once if queued; else the device is asked to stop it)', params: IdParam, response: { 202: Task } },
    onRequest: operator,
    config: { auditAction: 'task.cancel' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'task', id: req.params.id } };
    return reply.status(202).send(await ctx.tasks.cancel(req.params.id, req.user!.username));
  });

  app.post('/tasks/:id/retry', {
    schema: { tags: ['tasks'], summary: 'Retry a failed, cancelled or timed-out task as a new attempt', params: IdParam, response: { 201: Task } },
    onRequest: operator,
    config: { auditAction: 'task.retry' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'task', id: req.params.id } };
    const task = await ctx.tasks.retry(req.params.id, req.user!.username);
    req.audit.detail = { newTask: task.id };
    return reply.status(201).send(task);
  });
}
