import Type from 'typebox';
import { Artifact, ArtifactQuery, CreateDownloadUrl, DownloadUrl, IdParam, Page, SignedArtifact, SigningKey, UploadArtifactQuery } from '@pallas/protocol';
import type { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError } from '../../../errors.js';
import type { App, RouteContext } from '../context.js';
import { sendFile } from '../range.js';

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
  const viewer = ctx.guard('viewer');
  const operator = ctx.guard('operator');

  app.get('/signing-key', {
    schema: { tags: ['artifacts'], summary: 'The manager\'s Ed25519 public key that signs artifact manifests (agents pin it at enrollment)', response: { 200: SigningKey } },
    onRequest: viewer,
  }, async () => ctx.artifacts.signingKey);

  await app.register(async (scope) => {
    const raw = scope.withTypeProvider<TypeBoxTypeProvider>();
    // In this scope only: any body is handed over as the raw request stream, unread, so a
    // multi-GB upload never passes through Fastify's body limit or a buffer. The route checks
    // the content type itself, to say what it wants.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    raw.post('/artifacts', {
      schema: {
        tags: ['artifacts'],
        summary: 'Upload an artifact: the raw bytes as the body (Content-Type: application/octet-stream), streamed to the store and hashed on the way. A cut upload is discarded; upload it again.',
        querystring: UploadArtifactQuery,
        response: { 201: SignedArtifact },
      },
      onRequest: operator,
      config: { auditAction: 'artifact.upload' },
    }, async (req, reply) => {
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
        // The body is not read: close the connection after the answer instead of draining GBs.
        void reply.header('connection', 'close');
        throw err;
      }
      try {
        const created = await ctx.artifacts.upload(req.query, req.body as Readable, req.user!.username);
        req.audit.target = { kind: 'artifact', id: created.id, name: `${created.name} ${created.version}` };
        req.audit.detail = { ...req.audit.detail, size: created.size, sha256: created.sha256 };
        return reply.status(201).send(created);
      } catch (err) {
        void reply.header('connection', 'close');
        throw err;
      }
    });
  });

  app.get('/artifacts', {
    schema: { tags: ['artifacts'], summary: 'List artifacts, newest first', querystring: ArtifactQuery, response: { 200: Page(Artifact) } },
    onRequest: viewer,
  }, async (req) => ctx.artifacts.list(req.query));

  app.get('/artifacts/:id', {
    schema: { tags: ['artifacts'], summary: 'An artifact with its manifest and the manager\'s signature over it', params: IdParam, response: { 200: SignedArtifact } },
    onRequest: viewer,
  }, async (req) => ctx.artifacts.get(req.params.id));

  app.delete('/artifacts/:id', {
    schema: { tags: ['artifacts'], summary: 'Delete an artifact; refused (409) while a queued, sent or running task uses it', params: IdParam },
    onRequest: operator,
    config: { auditAction: 'artifact.delete' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'artifact', id: req.params.id } };
    const gone = await ctx.artifacts.delete(req.params.id);
    req.audit.target = { kind: 'artifact', id: gone.id, name: `${gone.name} ${gone.version}` };
    return reply.status(204).send();
  });

  app.post('/artifacts/:id/download-urls', {
    schema: {
      tags: ['artifacts'],
      summary: 'Make a download URL signed for one device (what a task hands its agent); anyone holding it can fetch the artifact as that device until it expires',
      params: IdParam,
      body: CreateDownloadUrl,
      response: { 201: DownloadUrl },
    },
    onRequest: operator,
    config: { auditAction: 'artifact.download-url' },
  }, async (req, reply) => {
    req.audit = { target: { kind: 'artifact', id: req.params.id }, detail: { deviceId: req.body.deviceId } };
    const base = `${req.protocol}://${req.host}`;
    const made = await ctx.artifacts.downloadUrlFor(req.params.id, req.body.deviceId, req.body.ttlSec ?? ctx.downloadUrlTtlSec, base);
    return reply.status(201).send(made);
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/artifacts/:id/content',
    schema: { tags: ['artifacts'], summary: 'Download an artifact\'s bytes (Range, If-Range, ETag = SHA-256)', params: IdParam },
    onRequest: viewer,
    handler: async (req, reply) => {
      const a = await ctx.artifacts.get(req.params.id);
      return sendFile(req, reply, { ...a, fileName: `${a.name}-${a.version}.${a.kind}`, open: (r) => ctx.artifacts.open(a.id, r) });
    },
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
