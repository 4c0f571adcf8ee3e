/**
 * The artifact downloader against a local node:http server this test controls: resume after
 * cuts, a server that ignores ranges, one that sends too much, flipped bytes, bad signatures,
 * 403/404 reasons, the bandwidth cap, a part file kept for a new downloader, cancel cleanup.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, it } from 'node:test';
import { canonicalJson, type ArtifactGrant, type ArtifactManifest, type SigningKey } from '@pallas/protocol';
import { tempDir } from '@pallas/testkit';
import { pino } from 'pino';
import { ArtifactError } from '../src/downloads/artifact-error.js';
import { Downloader, resolveGrantUrl, type DownloaderOptions } from '../src/downloads/downloader.js';

const SIZE = 2 * 1024 * 1024 + 12345;
const data = randomBytes(SIZE);
const sha256 = createHash('sha256').update(data).digest('hex');

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Serves `body` the way the manager does: 200, or 206 for `Range: bytes=a-` with a matching If-Range. */
function serve(body: Buffer, opts: { etag?: string; cutAfter?: number } = {}): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const ranged = m && (ifRange === undefined || ifRange === `"${opts.etag ?? sha256}"`);
    const start = ranged ? Number(m[1]) : 0;
    if (ranged && start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const slice = body.subarray(start);
    res.writeHead(ranged ? 206 : 200, {
      'content-length': slice.length,
      'accept-ranges': 'bytes',
      ...(ranged ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (opts.cutAfter !== undefined && opts.cutAfter < slice.length) {
      // FIN after the bytes: the client gets exactly `cutAfter` bytes, then the response ends short.
      res.write(slice.subarray(0, opts.cutAfter), () => res.socket?.end());
    } else {
      res.end(slice);
    }
  };
}

describe('artifact downloader', () => {
  const dirs = tempDir('pallas-downloader-');
  let server: Server;
  let base: string;
  let handlers: Handler[] = [];
  let fallback: Handler = serve(data);
  /** What each request asked, and how big the part file was when it came (the downloader has written all it had). */
  let requests: { url: string; range: string | undefined; ifRange: string | undefined; part: number }[] = [];
  let keys: { publicKey: KeyObject; privateKey: KeyObject };
  let pinned: SigningKey;
  let stateDir: string;
  let n = 0;

  const manifest = (over: Partial<ArtifactManifest> = {}): ArtifactManifest =>
    ({ id: `art_test${++n}`, kind: 'ova', name: 'ubuntu', version: '24.04', size: SIZE, sha256, ...over });
  const grant = (m: ArtifactManifest, over: Partial<ArtifactGrant> = {}): ArtifactGrant => ({
    manifest: m,
    signature: sign(null, Buffer.from(canonicalJson(m)), keys.privateKey).toString('base64'),
    keyId: pinned.keyId,
    url: `/dl/${m.id}?device=d&exp=1&sig=x`,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    ...over,
  });
  const downloader = (over: Partial<DownloaderOptions> = {}): Downloader => new Downloader({
    stateDir,
    logger: pino({ level: 'silent' }),
    trust: () => ({ manager: base, ca: undefined, signingKey: pinned }),
    backoff: { baseMs: 10, capMs: 50 },
    progressIntervalMs: 0,
    ...over,
  });
  const ctx = (signal = new AbortController().signal, progress: (pct: number, message?: string) => void = () => {}) => ({ signal, progress });
  const rejectsWith = async (p: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof ArtifactError, `an ArtifactError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.match(err.message, message);
      return true;
    });
  };

  before(async () => {
    keys = generateKeyPairSync('ed25519');
    pinned = { algorithm: 'ed25519', keyId: 'k-test', publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    server = createServer((req, res) => {
      const id = /\/dl\/([^?]+)/.exec(req.url ?? '')?.[1] ?? '';
      const part = statSync(join(stateDir, 'downloads', `${id}.part`), { throwIfNoEntry: false })?.size ?? -1;
      requests.push({ url: req.url ?? '', range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, part });
      (handlers.shift() ?? fallback)(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/prefix`;
  });
  beforeEach(() => {
    handlers = [];
    fallback = serve(data);
    requests = [];
    stateDir = join(dirs.path, `state-${++n}`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    dirs.cleanup();
  });

  it('downloads, verifies and renames to <id>.<kind>; progress says bytes and rate', async () => {
    const m = manifest();
    const messages: string[] = [];
    const path = await downloader().fetch(grant(m), ctx(undefined, (pct, msg) => messages.push(`${pct} ${msg}`)));
    assert.equal(path, join(stateDir, 'downloads', `${m.id}.ova`));
    assert.ok(readFileSync(path).equals(data));
    assert.equal(existsSync(join(stateDir, 'downloads', `${m.id}.part`)), false);
    assert.match(messages.at(-1)!, /^100 downloading ubuntu-24\.04: 2 MiB of 2 MiB at [\d.]+ (KiB|MiB|GiB)\/s$/);
    assert.equal(requests[0]!.range, undefined);
  });

  it('resumes after cuts with Range and If-Range, from where the part ends', async () => {
    handlers = [serve(data, { cutAfter: 300_000 }), serve(data, { cutAfter: 700_000 })];
    const m = manifest();
    const path = await downloader().fetch(grant(m), ctx());
    assert.ok(readFileSync(path).equals(data));
    assert.equal(requests.length, 3);
    // A cut loses what was in flight (at most a read's worth): the part holds what arrived.
    const [, second, third] = requests;
    assert.ok(second!.part > 200_000 && second!.part <= 300_000, `part after the first cut: ${second!.part}`);
    assert.equal(second!.range, `bytes=${second!.part}-`);
    assert.equal(second!.ifRange, `"${sha256}"`);
    assert.ok(third!.part > second!.part + 600_000 && third!.part <= second!.part + 700_000, `part after the second cut: ${third!.part}`);
    assert.equal(third!.range, `bytes=${third!.part}-`);
  });

  it('a 200 instead of a 206 starts over from byte 0', async () => {
    const ignoreRange: Handler = (req, res) => serve(data, { cutAfter: 500_000 })(Object.assign(req, { headers: { ...req.headers, range: undefined } }), res);
    handlers = [serve(data, { cutAfter: 400_000 }), ignoreRange];
    fallback = (req, res) => serve(data)(Object.assign(req, { headers: { ...req.headers, range: undefined } }), res);
    const path = await downloader().fetch(grant(manifest()), ctx());
    assert.ok(readFileSync(path).equals(data), 'no bytes of the first attempt glued to the second');
    assert.ok(requests[1]!.part > 0);
    assert.equal(requests[1]!.range, `bytes=${requests[1]!.part}-`, 'asked to resume');
    assert.ok(requests[2]!.part > 0 && requests[2]!.part <= 500_000, 'the part was truncated for the 200 and refilled from it');
    assert.equal(requests[2]!.range, `bytes=${requests[2]!.part}-`);
  });

  it('refuses a server that sends more bytes than the manifest, with or without Content-Length, and deletes the part', async () => {
    const more = Buffer.concat([data, randomBytes(5000)]);
    fallback = serve(more);
    const m = manifest();
    await rejectsWith(downloader().fetch(grant(m), ctx()), 'artifact_invalid', new RegExp(`offers ${SIZE + 5000} bytes for artifact ${m.id}, the signed manifest says ${SIZE}`));
    fallback = (_req, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end(more);
    };
    const m2 = manifest();
    await rejectsWith(downloader().fetch(grant(m2), ctx()), 'artifact_invalid', new RegExp(`sent more than the ${SIZE} bytes of artifact ${m2.id}`));
    assert.deepEqual(readdirSync(join(stateDir, 'downloads')), []);
  });

  it('refuses a flipped byte and deletes the part', async () => {
    const flipped = Buffer.from(data);
    flipped[1000] = flipped[1000]! ^ 1;
    fallback = serve(flipped);
    const m = manifest();
    await rejectsWith(downloader().fetch(grant(m), ctx()), 'artifact_invalid', new RegExp(`${m.id}: SHA-256 of the download is [0-9a-f]{64}, the signed manifest says ${sha256}; file deleted`));
    assert.deepEqual(readdirSync(join(stateDir, 'downloads')), []);
  });

  it('refuses a bad signature, another key id and an unpinned agent before any byte', async () => {
    const m = manifest();
    const good = grant(m);
    await rejectsWith(downloader().fetch({ ...good, manifest: { ...m, size: SIZE + 1 } }, ctx()), 'artifact_invalid', new RegExp(`manifest signature of artifact ${m.id} does not verify with the pinned key k-test`));
    await rejectsWith(downloader().fetch({ ...good, keyId: 'k-other' }, ctx()), 'artifact_invalid', /signed with key k-other, but this agent pinned key k-test/);
    const unpinned = downloader({ trust: () => ({ manager: base, ca: undefined, signingKey: undefined }) });
    await rejectsWith(unpinned.fetch(good, ctx()), 'artifact_untrusted', /enrolled before the manager signed artifacts.*re-enroll/);
    await rejectsWith(downloader().fetch(grant(manifest({ id: '../../etc/passwd' })), ctx()), 'artifact_invalid', /not one the manager makes/);
    assert.equal(requests.length, 0);
  });

  it('fails with the manager\'s reason on 403 and on 404', async () => {
    const refuse = (status: number, message: string): Handler => (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: status === 403 ? 'forbidden' : 'not_found', message } }));
    };
    fallback = refuse(403, 'download URL expired at 2026-01-01T00:00:00.000Z; ask the manager for a new one');
    const m = manifest();
    await rejectsWith(downloader().fetch(grant(m), ctx()), 'artifact_forbidden', new RegExp(`refused the download of artifact ${m.id}: download URL expired at 2026-01-01`));
    fallback = refuse(404, 'artifact x not found');
    await rejectsWith(downloader().fetch(grant(manifest()), ctx()), 'artifact_not_found', /no longer on the manager \(deleted\?\): artifact x not found/);
    assert.equal(requests.length, 2, 'neither is retried');
  });

  it('retries 5xx with backoff', async () => {
    handlers = [(_req, res) => res.writeHead(503).end(), (_req, res) => res.writeHead(502).end()];
    const path = await downloader().fetch(grant(manifest()), ctx());
    assert.ok(readFileSync(path).equals(data));
    assert.equal(requests.length, 3);
  });

  it('keeps to the bandwidth cap', async () => {
    const small = data.subarray(0, 600 * 1024);
    fallback = serve(small, { etag: createHash('sha256').update(small).digest('hex') });
    const cap = 300 * 1024;
    const m = manifest({ size: small.length, sha256: createHash('sha256').update(small).digest('hex') });
    const t0 = performance.now();
    await downloader({ maxBytesPerSec: cap }).fetch(grant(m), ctx());
    const elapsed = (performance.now() - t0) / 1000;
    const expected = small.length / cap;
    assert.ok(elapsed >= expected * 0.9, `took ${elapsed.toFixed(2)} s, at least ${(expected * 0.9).toFixed(2)} s expected`);
    assert.ok(elapsed < expected * 4, `took ${elapsed.toFixed(2)} s, far more than ${expected.toFixed(2)} s`);
  });

  it('keeps the part file for a new downloader instance, which resumes from it', async () => {
    handlers = [serve(data, { cutAfter: 800_000 }), (_req, res) => res.writeHead(403).end('{"error":{"code":"forbidden","message":"expired"}}')];
    const m = manifest();
    await rejectsWith(downloader().fetch(grant(m), ctx()), 'artifact_forbidden', /expired/);
    const part = join(stateDir, 'downloads', `${m.id}.part`);
    const kept = statSync(part).size;
    assert.ok(kept > 700_000 && kept <= 800_000, `part kept after a refusal (${kept} bytes)`);
    const path = await downloader().fetch(grant(m), ctx());
    assert.ok(readFileSync(path).equals(data));
    assert.equal(requests.at(-1)!.range, `bytes=${kept}-`);
  });

  it('a resend\'s fresh URL is used once the old one is refused', async () => {
    const m = manifest();
    const g = grant(m, { url: '/dl/old' });
    let current = '/dl/old';
    const live: ArtifactGrant = { ...g, get url() { return current; } };
    handlers = [serve(data, { cutAfter: 200_000 }), (_req, res) => {
      current = '/dl/new'; // the task was sent again meanwhile
      res.writeHead(403).end('{"error":{"code":"forbidden","message":"expired"}}');
    }];
    const path = await downloader().fetch(live, ctx());
    assert.ok(readFileSync(path).equals(data));
    assert.deepEqual(requests.map((r) => r.url), ['/prefix/dl/old', '/prefix/dl/old', '/prefix/dl/new']);
    assert.match(requests[2]!.range ?? '', /^bytes=[1-9]\d*-$/, 'resumed, not restarted');
  });

  it('cancel mid-download rejects with the reason and removes the part file, nothing else', async () => {
    const dir = join(stateDir, 'downloads');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'art_other.ova'), 'verified earlier');
    writeFileSync(join(dir, 'art_other2.part'), 'another task');
    let slow: ServerResponse | undefined;
    fallback = (_req, res) => {
      res.writeHead(200, { 'content-length': SIZE });
      res.write(data.subarray(0, 100_000));
      slow = res;
    };
    const abort = new AbortController();
    const m = manifest();
    const pending = downloader().fetch(grant(m), ctx(abort.signal));
    const part = join(dir, `${m.id}.part`);
    for (let i = 0; i < 200 && !(existsSync(part) && statSync(part).size >= 100_000); i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(statSync(part).size, 100_000);
    const reason = new Error('cancelled by the manager');
    abort.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    slow?.destroy();
    assert.deepEqual(readdirSync(dir).sort(), ['art_other.ova', 'art_other2.part']);
  });

  it('one download per artifact at a time: a second fetch reuses the verified file', async () => {
    const m = manifest();
    const d = downloader();
    const [a, b] = await Promise.all([d.fetch(grant(m), ctx()), d.fetch(grant(m), ctx())]);
    assert.equal(a, b);
    assert.equal(requests.length, 1);
  });

  it('release removes the verified file; sweep removes stale part files only', async () => {
    const m = manifest();
    const d = downloader();
    const path = await d.fetch(grant(m), ctx());
    await d.release(m.id);
    assert.equal(existsSync(path), false);
    const dir = join(stateDir, 'downloads');
    writeFileSync(join(dir, 'art_old.part'), 'x');
    writeFileSync(join(dir, 'art_new.part'), 'x');
    const old = new Date(Date.now() - 8 * 86_400_000);
    utimesSync(join(dir, 'art_old.part'), old, old);
    assert.deepEqual(await d.sweep(7 * 86_400_000), ['art_old.part']);
    assert.deepEqual(readdirSync(dir), ['art_new.part']);
  });

  it('resolves grant URLs against the manager URL, path prefix kept', () => {
    assert.equal(resolveGrantUrl('https://m.example/pallas', '/dl/a?x=1').href, 'https://m.example/pallas/dl/a?x=1');
    assert.equal(resolveGrantUrl('https://m.example/pallas/', '/dl/a').href, 'https://m.example/pallas/dl/a');
    assert.equal(resolveGrantUrl('https://m.example:8443', '/dl/a').href, 'https://m.example:8443/dl/a');
  });
});
