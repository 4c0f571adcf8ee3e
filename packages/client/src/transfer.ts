/**
 * Artifact uploads and downloads as streams, with progress. An upload streams its body (never
 * read whole) with its length declared, so the manager can refuse an oversized file before a
 * byte is sent; a download hands over the response body as it arrives, from an offset to resume.
 */
import type { RouteResult, RouteQuery } from '@pallas/protocol/routes';
import type { PallasClient } from './client.js';
import { PallasApiError, PallasNetworkError } from './errors.js';

export type Progress = (done: number, total: number) => void;

export interface UploadOptions {
  /** The body's length in bytes, when it is a stream (a Blob or bytes know theirs). */
  size?: number;
  /** Bytes sent so far (handed to the network), and the total. */
  onProgress?: Progress;
  signal?: AbortSignal;
}

/** The parts of the browser's XMLHttpRequest an upload uses (not in Node's typings). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: unknown): void;
  abort(): void;
  status: number;
  statusText: string;
  responseText: string;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}

/** Counts the bytes that pass. */
function meter(total: number, onProgress: Progress | undefined): TransformStream<Uint8Array, Uint8Array> {
  let done = 0;
  return new TransformStream({
    transform(chunk, controller) {
      done += chunk.byteLength;
      onProgress?.(done, total);
      controller.enqueue(chunk);
    },
  });
}

export async function uploadArtifact(
  client: PallasClient,
  meta: RouteQuery<'uploadArtifact'>,
  data: Blob | Uint8Array | ReadableStream<Uint8Array>,
  opts: UploadOptions = {},
): Promise<RouteResult<'uploadArtifact'>> {
  const url = client.url('uploadArtifact', undefined, meta);
  const Request = (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;
  // In a browser, fetch reports no upload progress and cannot stream a body over HTTP/1.1;
  // XMLHttpRequest streams a File from disk and reports both.
  if (Request && typeof Blob !== 'undefined' && data instanceof Blob) return xhrUpload(client, new Request(), url, data, opts);
  const size = opts.size ?? (data instanceof Uint8Array ? data.byteLength : data instanceof Blob ? data.size : undefined);
  if (size === undefined) throw new TypeError('uploadArtifact: give the size of a streamed body (opts.size)');
  const source = data instanceof Uint8Array ? new Blob([data]).stream() : data instanceof Blob ? data.stream() : data;
  const { text } = await client.request('POST', url, {
    body: source.pipeThrough(meter(size, opts.onProgress)),
    duplex: true,
    type: 'application/octet-stream',
    headers: { 'content-length': String(size) },
    // A multi-GB upload takes what it takes; the caller's signal can still stop it.
    timeoutMs: Infinity,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return JSON.parse(text) as RouteResult<'uploadArtifact'>;
}

function xhrUpload(client: PallasClient, xhr: Xhr, url: string, file: Blob, opts: UploadOptions): Promise<RouteResult<'uploadArtifact'>> {
  return new Promise((resolve, reject) => {
    xhr.open('POST', url);
    const headers: Record<string, string> = {};
    client.authorize('POST', headers);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as RouteResult<'uploadArtifact'>);
        } catch {
          reject(new PallasApiError(xhr.status, 'bad_response', 'the manager accepted the upload but its answer was not readable'));
        }
        return;
      }
      reject(PallasApiError.from(xhr.status, xhr.statusText, xhr.responseText));
    };
    // The manager closes the connection when it refuses an upload before reading it (too
    // large, a name already taken), and the browser may then see only a network error.
    xhr.onerror = () => reject(new PallasNetworkError(client.server, new Error('the upload was cut off: the manager closed the connection or could not be reached; a very large file may be over its size limit, maxArtifactBytes')));
    xhr.onabort = () => reject(new DOMException('upload cancelled; the manager keeps nothing of a cut upload', 'AbortError'));
    opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

export interface DownloadOptions {
  /** Start at this byte (to resume): the answer is then the rest of the file. */
  offset?: number;
  /** Resume only if the file is still this one (its SHA-256, the ETag); else the whole file comes. */
  ifSha256?: string;
  /** Bytes received so far (counting from `offset`), and the file's total. */
  onProgress?: Progress;
  signal?: AbortSignal;
}

export interface Download {
  /** The bytes, as they arrive. */
  body: ReadableStream<Uint8Array>;
  /** Where `body` starts in the file: `offset` when the manager resumed, else 0. */
  offset: number;
  /** The whole file's size. */
  total: number;
  /** The file's SHA-256 (hex), from its ETag. */
  sha256: string | undefined;
}

export async function downloadArtifact(client: PallasClient, id: string, opts: DownloadOptions = {}): Promise<Download> {
  const offset = opts.offset ?? 0;
  const headers: Record<string, string> = {};
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    if (opts.ifSha256) headers['if-range'] = `"${opts.ifSha256}"`;
  }
  const res = await client.send('GET', client.url('downloadArtifact', { id }), {
    accept: 'application/octet-stream', headers, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (!res.body) throw new PallasApiError(res.status, 'bad_response', 'the manager sent no content');
  const resumed = res.status === 206;
  const start = resumed ? offset : 0;
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = resumed ? Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN) : length;
  const sha256 = /^"?([0-9a-f]{64})"?$/.exec(res.headers.get('etag') ?? '')?.[1];
  const counted = opts.onProgress ? res.body.pipeThrough(meter(total - start, (n) => opts.onProgress?.(start + n, total))) : res.body;
  return { body: counted, offset: start, total, sha256 };
}
