import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

/** Rollouts; every operator action is audited with who (the hook) and why (`reason`, when given). */
export async function rolloutRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listRollouts', async (req) => ctx.rollouts.list(req.query));

  serve(app, ctx, 'createRollout', async (req) => {
    const b = req.body;
    req.audit = { detail: { name: b.name, operation: b.operation.kind, groupId: b.groupId ?? null, tag: b.tag ?? null, devices: b.deviceIds?.length ?? null, membership: b.membership ?? 'fixed' } };
    const rollout = await ctx.rollouts.create(b, req.user!.username);
    req.audit.target = { kind: 'rollout', id: rollout.id, name: rollout.name };
    req.audit.detail = { ...req.audit.detail, devices: rollout.counts.total, waves: rollout.waves.map((w) => w.size) };
    return rollout;
  });

  serve(app, ctx, 'planRollout', async (req) => ctx.rollouts.plan(req.body));

  serve(app, ctx, 'getRollout', async (req) => ctx.rollouts.get(req.params.id));

  serve(app, ctx, 'listRolloutDevices', async (req) => ctx.rollouts.devices(req.params.id, req.query));

  serve(app, ctx, 'pauseRollout', async (req) => {
    req.audit = { target: { kind: 'rollout', id: req.params.id }, detail: { reason: req.body?.reason ?? null } };
    return ctx.rollouts.pause(req.params.id);
  });

  serve(app, ctx, 'resumeRollout', async (req) => {
    req.audit = { target: { kind: 'rollout', id: req.params.id }, detail: { reason: req.body?.reason ?? null } };
    return ctx.rollouts.resume(req.params.id);
  });

  serve(app, ctx, 'abortRollout', async (req) => {
    req.audit = { target: { kind: 'rollout', id: req.params.id }, detail: { reason: req.body?.reason ?? null } };
    return ctx.rollouts.abort(req.params.id, req.user!.username);
  });
}
