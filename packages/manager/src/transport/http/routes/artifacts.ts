import Type from 'typebox';
import type { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';
import { sendContinue } from '../expect-continue.js';
import { closeAfterRefusal } from '../refused-body.js';
import { sendFile } from '../range.js';
import { serve } from '../serve.js';

const DownloadQuery = Type.Object({
  device: Type.Optional(Type.String({ maxLength: 128 })),
  exp: Type.Optional(Type.String({ maxLength: 16 })),
  sig: Type.Optional(Type.String({ maxLength: 128 })),
});
const ArtifactIdParam = Type.Object({ artifactId: Type.String({ minLength: 1, maxLength: 64 }) });

/**
 * Artifacts under /api/v1: upload (operator; the raw body streams to the store), list and
 * show (viewer), delete (operator), content download (viewer) and the manifest signing key.
 */
export async function artifactRoutes(app: App, ctx: RouteContext): Promise<void> {
  serve(app, ctx, 'signingKey', async () => ctx.artifacts.signingKey);

  await app.register(async (scope) => {
    const raw = scope.withTypeProvider<TypeBoxTypeProvider>();
    // In this scope only: any body is handed over as the raw request stream, unread, so a
    // multi-GB upload never passes through Fastify's body limit or a buffer. The route checks
    // the content type itself, to say what it wants.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    serve(raw, ctx, 'uploadArtifact', async (req, reply) => {
      req.audit = { detail: { kind: req.query.kind, name: req.query.name, version: req.query.version } };
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/octet-stream') {
        throw new AppError('unsupported_media_type', 'send the file as the raw body with Content-Type: application/octet-stream');
      }
      if (req.body === undefined || req.body === null) throw new AppError('invalid_request', 'the body is empty: send the file\'s bytes');
      const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
      try {
        await ctx.artifacts.checkUpload(req.query, declared);
      } catch (err) {
        // The body is not read: the connection is closed after the answer instead of reading GBs.
        closeAfterRefusal(req, reply);
        throw err;
      }
      // Accepted: only now is a client that waits for `100 Continue` asked for the bytes.
      sendContinue(req, reply);
      try {
        const created = await ctx.artifacts.upload(req.query, req.body as Readable, req.user!.username);
        req.audit.target = { kind: 'artifact', id: created.id, name: `${created.name} ${created.version}` };
        req.audit.detail = { ...req.audit.detail, size: created.size, sha256: created.sha256 };
        return created;
      } catch (err) {
        closeAfterRefusal(req, reply);
        throw err;
      }
    });
  });

  serve(app, ctx, 'listArtifacts', async (req) => ctx.artifacts.list(req.query));

  serve(app, ctx, 'getArtifact', async (req) => ctx.artifacts.get(req.params.id));

  serve(app, ctx, 'deleteArtifact', async (req) => {
    req.audit = { target: { kind: 'artifact', id: req.params.id } };
    const gone = await ctx.artifacts.delete(req.params.id);
    req.audit.target = { kind: 'artifact', id: gone.id, name: `${gone.name} ${gone.version}` };
  });

  serve(app, ctx, 'createDownloadUrl', async (req) => {
    req.audit = { target: { kind: 'artifact', id: req.params.id }, detail: { deviceId: req.body.deviceId } };
    const base = `${req.protocol}://${req.host}`;
    return ctx.artifacts.downloadUrlFor(req.params.id, req.body.deviceId, req.body.ttlSec ?? ctx.downloadUrlTtlSec, base);
  });

  serve(app, ctx, 'downloadArtifact', async (req, reply) => {
    const a = await ctx.artifacts.get(req.params.id);
    return sendFile(req, reply, { ...a, fileName: `${a.name}-${a.version}.${a.kind}`, open: (r) => ctx.artifacts.open(a.id, r) });
  });
}

/**
 * `GET /dl/{artifactId}?device=&exp=&sig=`: the URL a device downloads with. No session: the
 * HMAC in the URL is the credential, bound to one artifact, one device and an expiry.
 */
export async function deviceDownloadRoutes(app: App, ctx: RouteContext): Promise<void> {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/dl/:artifactId',
    schema: { hide: true, params: ArtifactIdParam, querystring: DownloadQuery },
    handler: async (req, reply) => {
      ctx.artifacts.checkDeviceUrl(req.params.artifactId, req.query);
      // Checked first: only a caller holding a valid URL learns whether the artifact exists.
      const a = await ctx.artifacts.get(req.params.artifactId);
      return sendFile(req, reply, { ...a, fileName: `${a.name}-${a.version}.${a.kind}`, open: (r) => ctx.artifacts.open(a.id, r) });
    },
  });
}
