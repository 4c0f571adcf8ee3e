/**
 * `@pallas/client/node`: artifacts to and from files, for Node.js scripts and the CLI. The
 * file is streamed either way, never read whole; a download resumes a partial file and checks
 * the SHA-256 of the whole before it is given its name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, Writable } from 'node:stream';
import type { RouteQuery, RouteResult } from '@pallas/protocol/routes';
import type { PallasClient } from './client.js';
import { PallasApiError, PallasNetworkError } from './errors.js';
import type { Progress } from './transfer.js';

/**
 * Uploads the file at `path` as an artifact; `onProgress` gets the bytes handed to the network.
 * Over node:http rather than fetch, which cannot wait for `100 Continue`: the bytes go only once
 * the manager has accepted the upload, so one it refuses (too large, a name already taken) costs
 * none and rejects with the API's error code. Were the bytes already on their way, the manager's
 * close could reset the connection before its answer was read.
 */
export async function uploadFile(
  client: PallasClient,
  path: string,
  meta: RouteQuery<'uploadArtifact'>,
  opts: { onProgress?: Progress; signal?: AbortSignal } = {},
): Promise<RouteResult<'uploadArtifact'>> {
  const { size } = await stat(path);
  const url = new URL(client.url('uploadArtifact', undefined, meta));
  const headers: Record<string, string> = {
    accept: 'application/json', 'content-type': 'application/octet-stream', 'content-length': String(size), expect: '100-continue',
  };
  client.authorize('POST', headers);
  let sent = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      opts.onProgress?.(sent, size);
      done(null, chunk);
    },
  });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const answer = await new Promise<{ status: number; statusText: string; text: string }>((resolve, reject) => {
    let sending = false;
    const req = send(url, { method: 'POST', headers, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => {
      // Answered before it asked for the bytes (refused): none are sent, and the request that
      // never ends is dropped once the answer is read.
      const refusedFirst = !sending;
      sending = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text });
        if (refusedFirst) req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      // A refusal arrives as the manager closes: the write may fail first, the answer just after.
      setTimeout(() => reject(new PallasNetworkError(client.server, err)), 1000).unref();
    });
    const body = () => {
      if (sending) return;
      sending = true;
      clearTimeout(unasked);
      const source = createReadStream(path, { highWaterMark: 1024 * 1024 });
      source.on('error', (err) => {
        req.destroy();
        reject(err);
      });
      source.pipe(meter).pipe(req);
    };
    req.on('continue', body);
    // A proxy or server that ignores Expect never asks: send after a second, as curl does.
    const unasked = setTimeout(body, 1000);
    req.on('close', () => clearTimeout(unasked));
  });
  if (answer.status < 200 || answer.status >= 300) throw PallasApiError.from(answer.status, answer.statusText, answer.text);
  return JSON.parse(answer.text) as RouteResult<'uploadArtifact'>;
}

/**
 * Downloads an artifact to `path`. The bytes go to `<path>.part` first; an existing `.part` is
 * resumed (if the artifact is still the same), and the file gets its name only once its
 * SHA-256 is the artifact's. Resolves with the artifact's size and SHA-256.
 */
export async function downloadFile(
  client: PallasClient,
  id: string,
  path: string,
  opts: { onProgress?: Progress; signal?: AbortSignal } = {},
): Promise<{ size: number; sha256: string }> {
  const artifact = await client.call('getArtifact', { params: { id } });
  const part = `${path}.part`;
  const have = await stat(part).then((s) => s.size, () => 0);
  const hash = createHash('sha256');
  const download = await client.download(id, { offset: have, ifSha256: artifact.sha256, ...opts });
  if (download.offset > 0) {
    // What is already on disk counts towards the hash, read back rather than trusted.
    for await (const chunk of createReadStream(part, { end: download.offset - 1 })) hash.update(chunk as Buffer);
  }
  const out = createWriteStream(part, download.offset > 0 ? { flags: 'r+', start: download.offset } : { flags: 'w' });
  await download.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      controller.enqueue(chunk);
    },
  })).pipeTo(Writable.toWeb(out));
  const sha256 = hash.digest('hex');
  if (sha256 !== artifact.sha256) {
    await rm(part, { force: true });
    throw new Error(`artifact ${id}: the downloaded file's SHA-256 is ${sha256}, not ${artifact.sha256}; it was deleted, download it again`);
  }
  await rename(part, path);
  return { size: artifact.size, sha256 };
}
