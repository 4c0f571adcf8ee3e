/**
 * `@pallas/client/node`: artifacts to and from files, for Node.js scripts and the CLI. The
 * file is streamed either way, never read whole; a download resumes a partial file and checks
 * the SHA-256 of the whole before it is given its name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import type { RouteQuery, RouteResult } from '@pallas/protocol/routes';
import type { PallasClient } from './client.js';
import type { Progress } from './transfer.js';

/** Uploads the file at `path` as an artifact; `onProgress` gets the bytes handed to the network. */
export async function uploadFile(
  client: PallasClient,
  path: string,
  meta: RouteQuery<'uploadArtifact'>,
  opts: { onProgress?: Progress; signal?: AbortSignal } = {},
): Promise<RouteResult<'uploadArtifact'>> {
  const { size } = await stat(path);
  const body = Readable.toWeb(createReadStream(path, { highWaterMark: 1024 * 1024 })) as ReadableStream<Uint8Array>;
  return client.upload(meta, body, { size, ...opts });
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
