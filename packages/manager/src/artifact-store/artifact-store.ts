import type { Readable } from 'node:stream';

/** What `put` learned about the bytes while it stored them. */
export interface StoredObject {
  size: number;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
}

/** An inclusive byte range, as in HTTP: `{start: 0, end: 99}` is the first 100 bytes. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  /** Refuse (with ArtifactTooLargeError) as soon as more than this many bytes arrived. */
  maxBytes: number;
}

/** The stream ended before the object was complete, or went over the size limit: nothing was stored. */
export class ArtifactTooLargeError extends Error {
  override name = 'ArtifactTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`the upload is larger than the limit of ${maxBytes} bytes`);
  }
}

/**
 * The artifact store port: where artifact bytes live. Ids are chosen by the caller (the
 * artifacts service) and are opaque file-name-safe strings. `put` streams; it never holds an
 * object in memory, and either stores the whole object under `id` or nothing at all (a cut
 * or an oversized stream leaves no trace). The local-folder adapter is the default; an
 * object store (S3 and the like) fits the same four calls.
 */
export interface ArtifactStore {
  put(id: string, source: Readable, opts: PutOptions): Promise<StoredObject>;
  /** The bytes of `id` (a range of them), or undefined when there is no such object. */
  open(id: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(id: string): Promise<{ size: number } | undefined>;
  /** Removes `id`; no error when it is already gone. */
  delete(id: string): Promise<void>;
}
