/**
 * The artifact store contract: what every adapter of the artifact-store port must do, as one
 * suite. An adapter's test file calls `artifactStoreContract('local-folder', makeStore)`; the
 * local folder is the only adapter today, and an object store (S3 and the like) runs the same.
 *
 * Each test gets a fresh, empty store from `make` and releases it with the returned cleanup.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { ArtifactTooLargeError, type ArtifactStore } from '../src/artifact-store/artifact-store.js';

export type MakeStore = () => Promise<{ store: ArtifactStore; cleanup(): Promise<void> }>;

const MiB = 1024 * 1024;

/** `size` bytes, in chunks of `chunk`, as an upload arrives. */
function source(bytes: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
  })());
}

/** A stream that delivers `first` bytes, then fails as a cut connection does. */
function cutAfter(first: Buffer): Readable {
  return Readable.from((async function* () {
    yield first;
    await new Promise((r) => setTimeout(r, 5));
    throw new Error('connection reset');
  })());
}

async function read(stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream, 'the object is there');
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function artifactStoreContract(name: string, make: MakeStore): void {
  describe(`artifact store contract: ${name}`, () => {
    let store: ArtifactStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('stores a stream whole and tells its size and SHA-256', async () => {
      const bytes = randomBytes(3 * MiB + 17);
      const stored = await store.put('art_contract1', source(bytes), { maxBytes: 10 * MiB });
      assert.deepEqual(stored, { size: bytes.length, sha256: sha256(bytes) });
      assert.deepEqual(await store.stat('art_contract1'), { size: bytes.length });
      assert.ok((await read(await store.open('art_contract1'))).equals(bytes));
    });

    it('stores an empty object', async () => {
      const stored = await store.put('art_empty', source(Buffer.alloc(0)), { maxBytes: 10 });
      assert.deepEqual(stored, { size: 0, sha256: sha256(Buffer.alloc(0)) });
      assert.equal((await read(await store.open('art_empty'))).length, 0);
    });

    it('serves inclusive byte ranges: the first byte, a middle, the last byte', async () => {
      const bytes = randomBytes(200_000);
      await store.put('art_ranges', source(bytes), { maxBytes: MiB });
      for (const [start, end] of [[0, 0], [1000, 65_535], [65_536, 131_071], [199_999, 199_999], [0, 199_999]] as const) {
        assert.ok((await read(await store.open('art_ranges', { start, end }))).equals(bytes.subarray(start, end + 1)), `${start}-${end}`);
      }
    });

    it('refuses a stream over the limit with ArtifactTooLargeError and keeps nothing of it', async () => {
      await assert.rejects(store.put('art_big', source(randomBytes(MiB + 1)), { maxBytes: MiB }), (err: unknown) =>
        err instanceof ArtifactTooLargeError && err.maxBytes === MiB);
      assert.equal(await store.stat('art_big'), undefined);
      assert.equal(await store.open('art_big'), undefined);
      // Exactly at the limit is fine.
      assert.equal((await store.put('art_big', source(randomBytes(MiB)), { maxBytes: MiB })).size, MiB);
    });

    it('keeps nothing of a cut upload, and a later upload of the same id succeeds', async () => {
      await assert.rejects(store.put('art_cut', cutAfter(randomBytes(100_000)), { maxBytes: MiB }), /connection reset/);
      assert.equal(await store.stat('art_cut'), undefined);
      const bytes = randomBytes(1000);
      await store.put('art_cut', source(bytes), { maxBytes: MiB });
      assert.ok((await read(await store.open('art_cut'))).equals(bytes));
    });

    it('never shows a reader half an object while it is being stored', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const half = randomBytes(500_000);
      const slow = Readable.from((async function* () {
        yield half;
        await gate;
        yield half;
      })());
      const putting = store.put('art_slow', slow, { maxBytes: MiB * 2 });
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await store.stat('art_slow'), undefined, 'not there until complete');
      assert.equal(await store.open('art_slow'), undefined);
      release();
      assert.equal((await putting).size, 1_000_000);
      assert.deepEqual(await store.stat('art_slow'), { size: 1_000_000 });
    });

    it('answers undefined for an object it does not have, and deletes idempotently', async () => {
      assert.equal(await store.open('art_nothing'), undefined);
      assert.equal(await store.open('art_nothing', { start: 0, end: 9 }), undefined);
      assert.equal(await store.stat('art_nothing'), undefined);
      await store.delete('art_nothing');
      await store.put('art_gone', source(randomBytes(10)), { maxBytes: 100 });
      await store.delete('art_gone');
      await store.delete('art_gone');
      assert.equal(await store.stat('art_gone'), undefined);
    });

    it('keeps objects apart, and an overwrite replaces the whole object', async () => {
      const a = randomBytes(1000);
      const b = randomBytes(2000);
      await store.put('art_a', source(a), { maxBytes: MiB });
      await store.put('art_b', source(b), { maxBytes: MiB });
      assert.ok((await read(await store.open('art_a'))).equals(a));
      assert.ok((await read(await store.open('art_b'))).equals(b));
      const smaller = randomBytes(10);
      await store.put('art_b', source(smaller), { maxBytes: MiB });
      assert.ok((await read(await store.open('art_b'))).equals(smaller));
      assert.deepEqual(await store.stat('art_a'), { size: 1000 });
    });

    it('refuses an id that could name something outside the store', async () => {
      for (const id of ['../escape', 'a/b', '', '.incoming', 'x'.repeat(65)]) {
        await assert.rejects(store.put(id, source(randomBytes(1)), { maxBytes: 10 }), `put ${JSON.stringify(id)}`);
        await assert.rejects(store.open(id), `open ${JSON.stringify(id)}`);
      }
    });
  });
}
