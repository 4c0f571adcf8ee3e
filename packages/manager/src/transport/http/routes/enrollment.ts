import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';

export async function enrollmentRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'listEnrollmentTokens', async (req) => ctx.enrollment.listTokens(req.query.limit, req.query.offset));

  serve(app, ctx, 'createEnrollmentToken', async (req) => {
    const created = await ctx.enrollment.createToken(req.user!.username, req.body);
    req.audit = { target: { kind: 'enrollment-token', id: created.id, name: created.name }, detail: { maxUses: created.maxUses, expiresAt: created.expiresAt } };
    return created;
  });

  serve(app, ctx, 'revokeEnrollmentToken', async (req) => {
    req.audit = { target: { kind: 'enrollment-token', id: req.params.id } };
    await ctx.enrollment.revokeToken(req.params.id);
  });

  // Called by agents, authenticated by the enrollment token in the body.
  serve(app, ctx, 'enroll', async (req) => {
    // The device is the actor; the token's secret never enters the log.
    req.audit = {
      action: 'device.enroll',
      actor: { kind: 'device', id: req.body.deviceId, name: req.body.facts.hostname },
      target: { kind: 'device', id: req.body.deviceId, name: req.body.facts.hostname },
    };
    try {
      const res = await ctx.enrollment.enroll(req.body, ctx.mqttUrlFor(req.hostname, req.protocol === 'https'));
      ctx.metrics.enrollments.inc({ result: 'ok' });
      return res;
    } catch (err) {
      ctx.metrics.enrollments.inc({ result: 'refused' });
      throw err;
    }
  });

  // Called by agents the broker refused, authenticated by the device secret in the body.
  serve(app, ctx, 'enrollStatus', async (req) => {
    req.audit = { action: 'device.enroll-status', actor: { kind: 'device', id: req.body.deviceId }, target: { kind: 'device', id: req.body.deviceId } };
    return ctx.enrollment.status(req.body);
  });
}
