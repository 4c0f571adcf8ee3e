import Type from 'typebox';
import {
  CreateEnrollmentToken, CreatedEnrollmentToken, EnrollRequest, EnrollResponse, EnrollmentToken, IdParam, Page, Paging,
} from '@pallas/protocol';
import type { App, RouteContext } from '../context.js';

export async function enrollmentRoutes(app: App, ctx: RouteContext): Promise<void> {
  const operator = ctx.guard('operator');

  app.get('/enrollment-tokens', {
    schema: { tags: ['enrollment'], summary: 'List enrollment tokens (secrets are never shown again)', querystring: Type.Object(Paging, { additionalProperties: false }), response: { 200: Page(EnrollmentToken) } },
    onRequest: operator,
  }, async (req) => ctx.enrollment.listTokens(req.query.limit, req.query.offset));

  app.post('/enrollment-tokens', {
    schema: { tags: ['enrollment'], summary: 'Create an enrollment token; its secret is in this response only', body: CreateEnrollmentToken, response: { 201: CreatedEnrollmentToken } },
    onRequest: operator,
    config: { auditAction: 'enrollment-token.create' },
  }, async (req, reply) => {
    const created = await ctx.enrollment.createToken(req.user!.username, req.body);
    req.audit = { target: { kind: 'enrollment-token', id: created.id, name: created.name }, detail: { maxUses: created.maxUses, expiresAt: created.expiresAt } };
    return reply.status(201).send(created);
  });

  app.delete('/enrollment-tokens/:id', {
    schema: { tags: ['enrollment'], summary: 'Revoke an enrollment token', params: IdParam },
    onRequest: operator,
    config: { auditAction: 'enrollment-token.revoke' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'enrollment-token', id: req.params.id } };
    await ctx.enrollment.revokeToken(req.params.id);
    return reply.status(204).send();
  });

  // Called by agents, authenticated by the enrollment token in the body.
  app.post('/enroll', {
    schema: { tags: ['enrollment'], summary: 'Enroll a device with an enrollment token (agents call this)', body: EnrollRequest, response: { 200: EnrollResponse } },
  }, async (req) => {
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
}
