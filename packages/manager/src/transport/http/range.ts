import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { ByteRange } from '../../artifact-store/artifact-store.js';

/** What a `Range` header asks of a body of `size` bytes. */
export type RangeAsk = { kind: 'full' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * One `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or the suffix `-n`. Anything we do not
 * serve (other units, several ranges, garbage) is ignored and the whole body is sent, which
 * the RFC allows; a well-formed range wholly past the end is unsatisfiable (416).
 */
export function parseRange(header: string | undefined, size: number): RangeAsk {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'full' };
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'full' }; // invalid: ignore it
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}

export interface Servable {
  size: number;
  sha256: string;
  /** Offered as the download's file name. */
  fileName: string;
  open(range?: ByteRange): Promise<Readable | undefined>;
}

/**
 * Sends a stored file with HTTP range support: `Accept-Ranges`, a strong `ETag` (the SHA-256),
 * `Range` → 206 with `Content-Range`, unsatisfiable → 416 with `Content-Range: bytes *\/size`,
 * `If-Range` (only a matching ETag keeps the range; a date or another ETag gets the full
 * body), and `HEAD`. The body streams from disk; Fastify pipes it, so a slow client holds
 * back the reads rather than filling memory. Never compressed: the bytes on the wire are
 * the bytes the agent hashes.
 */
export async function sendFile(req: FastifyRequest, reply: FastifyReply, file: Servable): Promise<FastifyReply> {
  const etag = `"${file.sha256}"`;
  void reply.header('accept-ranges', 'bytes').header('etag', etag).header('cache-control', 'private, no-transform')
    .header('content-disposition', `attachment; filename="${file.fileName.replace(/[^A-Za-z0-9._+~-]/g, '_')}"`);
  let ask = parseRange(req.headers.range, file.size);
  const ifRange = [req.headers['if-range']].flat()[0];
  if (ask.kind !== 'full' && ifRange !== undefined && ifRange.trim() !== etag) ask = { kind: 'full' };
  if (ask.kind === 'unsatisfiable') {
    return reply.status(416).header('content-range', `bytes */${file.size}`)
      .send({ error: { code: 'range_not_satisfiable', message: `the range ${req.headers.range} is outside the file (${file.size} bytes)` } });
  }
  const range = ask.kind === 'range' ? ask.range : undefined;
  const length = range ? range.end - range.start + 1 : file.size;
  void reply.status(range ? 206 : 200).type('application/octet-stream').header('content-length', String(length));
  if (range) void reply.header('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
  if (req.method === 'HEAD' || length === 0) return reply.send();
  const body = await file.open(range);
  if (!body) {
    // The row exists but the file is gone (deleted under us, or a broken store).
    reply.removeHeader('content-range');
    reply.removeHeader('content-length');
    return reply.status(404).type('application/json')
      .send({ error: { code: 'not_found', message: 'the artifact\'s file is missing from the store' } });
  }
  return reply.send(body);
}
