/**
 * Artifacts end to end against a real manager process: a 1 GiB upload through
 * `pallas artifacts upload` and its download through a signed device URL, with the manager's
 * RSS sampled from /proc all along (< 200 MB); then Debian's curl and wget resuming partial
 * downloads against a signed URL, and the 403 / 416 / If-Range answers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DownloadUrl, SignedArtifact } from '@pallas/protocol';
import { ADMIN_PASSWORD, TOOLS, type Api, missingToolsReason, patchFile, skipUnless, startManagerProcess, tempDir, type ManagerProcess } from '@pallas/testkit';
import { pallas } from './support/cli.js';

const GiB = 1024 ** 3;
const RSS_LIMIT = 200 * 1024 * 1024;

let manager: ManagerProcess;
let admin: Api;
const dirs = tempDir('pallas-artifacts-e2e-');
const config = join(dirs.path, 'cli');
const files = dirs.path;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('latin1')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}


async function signedUrl(artifactId: string, deviceId: string, ttlSec?: number): Promise<string> {
  const res = await admin.post<DownloadUrl>(`/api/v1/artifacts/${artifactId}/download-urls`, { deviceId, ...(ttlSec ? { ttlSec } : {}) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.url;
}

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  const login = await pallas(config, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await manager?.close();
  dirs.cleanup();
});

describe('a 1 GiB artifact', () => {
  it('uploads with pallas artifacts upload and downloads by signed URL with the manager under 200 MB RSS', async (t) => {
    const file = join(files, 'big.bin');
    // Sparse: no GiB of test data on disk, and the manager still reads and writes every byte.
    // A valid patch first (the manager checks the kind's format); tar readers ignore the rest.
    writeFileSync(file, Buffer.concat([patchFile('1.0'), randomBytes(1024 * 1024)]));
    truncateSync(file, GiB);
    const expected = await sha256File(file);

    const upRss = sampleRss(manager.pid);
    const up = await pallas(config, ['artifacts', 'upload', file, '--kind', 'patch', '--name', 'big', '--version', '1.0']);
    const upPeak = upRss.stop();
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /uploaded +100%  1 GiB \/ 1 GiB/, 'plain progress lines off a terminal');
    assert.match(up.stdout, new RegExp(`sha256 ${expected}`));
    const id = /artifact (art_\S+)/.exec(up.stdout)![1]!;
    assert.ok(upPeak < RSS_LIMIT, `manager RSS during upload peaked at ${(upPeak / 2 ** 20).toFixed(0)} MiB`);

    const shown = JSON.parse((await pallas(config, ['artifacts', 'show', id, '--json'])).stdout) as SignedArtifact;
    assert.equal(shown.size, GiB);
    assert.equal(shown.sha256, expected);

    const url = await signedUrl(id, 'device-1');
    const downRss = sampleRss(manager.pid);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), `"${expected}"`);
    const hash = createHash('sha256');
    let n = 0;
    for await (const chunk of res.body!) {
      hash.update(chunk);
      n += chunk.length;
    }
    const downPeak = downRss.stop();
    assert.equal(n, GiB);
    t.diagnostic(`manager peak RSS: upload ${(upPeak / 2 ** 20).toFixed(0)} MiB, download ${(downPeak / 2 ** 20).toFixed(0)} MiB`);
    assert.equal(hash.digest('hex'), expected);
    assert.ok(downPeak < RSS_LIMIT, `manager RSS during download peaked at ${(downPeak / 2 ** 20).toFixed(0)} MiB`);

    const ls = await pallas(config, ['artifacts', 'ls']);
    assert.match(ls.stdout, new RegExp(`${id} +patch +big +1\\.0 +1 GiB`));
    const rm = await pallas(config, ['artifacts', 'rm', id]);
    assert.equal(rm.code, 0, rm.stderr);
  });
});

describe('signed download URLs', { skip: skipUnless(missingToolsReason([TOOLS.curl, TOOLS.wget])) }, () => {
  const SIZE = 8 * 1024 * 1024 + 12345;
  let bytes: Buffer;
  let artifact: SignedArtifact;
  let url: string;

  before(async () => {
    bytes = randomBytes(SIZE);
    patchFile('2').copy(bytes, 0);
    const file = join(files, 'patch.bin');
    writeFileSync(file, bytes);
    const up = await pallas(config, ['artifacts', 'upload', file, '--kind', 'patch', '--name', 'hotfix', '--version', '2', '--json']);
    assert.equal(up.code, 0, up.stderr);
    artifact = JSON.parse(up.stdout) as SignedArtifact;
    url = await signedUrl(artifact.id, 'device-a');
  });

  it('curl -r fetches the rest of a cut download and the bytes are the same', async () => {
    const out = join(files, 'curl.part');
    const first = await run('curl', ['-sS', '-f', '-r', '0-3000000', '-o', out, url]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(statSync(out).size, 3_000_001);
    const rest = await run('curl', ['-sS', '-f', '-C', '-', '-o', out, url]);
    assert.equal(rest.code, 0, rest.stderr);
    assert.ok(readFileSync(out).equals(bytes));
    const tail = await run('curl', ['-sS', '-f', '-r', `${SIZE - 100}-`, '-D', '-', '-o', join(files, 'tail'), url]);
    assert.match(tail.stdout, /^HTTP\/1\.1 206/);
    assert.match(tail.stdout, new RegExp(`content-range: bytes ${SIZE - 100}-${SIZE - 1}/${SIZE}`, 'i'));
    assert.ok(readFileSync(join(files, 'tail')).equals(bytes.subarray(SIZE - 100)));
  });

  it('wget -c resumes a partial file', async () => {
    const out = join(files, 'wget.out');
    writeFileSync(out, bytes.subarray(0, 5_000_000));
    const res = await run('wget', ['-q', '-c', '-O', out, url]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(readFileSync(out).equals(bytes));
  });

  it('refuses an expired URL, another device\'s URL and a URL without its signature with 403', async () => {
    const short = await signedUrl(artifact.id, 'device-a', 1);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await fetch(short);
    assert.equal(expired.status, 403);
    assert.match(((await expired.json()) as { error: { message: string } }).error.message, /expired/);

    const foreign = new URL(url);
    foreign.searchParams.set('device', 'device-b');
    const wrong = await fetch(foreign);
    assert.equal(wrong.status, 403);
    assert.match(((await wrong.json()) as { error: { message: string } }).error.message, /does not match/);

    const bare = await fetch(`${manager.httpUrl}/dl/${artifact.id}`);
    assert.equal(bare.status, 403);
    const curl = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', short]);
    assert.equal(curl.stdout, '403');
  });

  it('answers 416 for a range past the end, honours If-Range, and serves HEAD', async () => {
    const bad = await fetch(url, { headers: { range: `bytes=${SIZE}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${SIZE}`);
    await bad.body?.cancel();

    const stale = await fetch(url, { headers: { range: 'bytes=100-', 'if-range': '"0000"' } });
    assert.equal(stale.status, 200, 'If-Range with another ETag: the whole file');
    assert.equal(Number(stale.headers.get('content-length')), SIZE);
    await stale.body?.cancel();
    const same = await fetch(url, { headers: { range: 'bytes=100-199', 'if-range': `"${artifact.sha256}"` } });
    assert.equal(same.status, 206);
    assert.ok(Buffer.from(await same.arrayBuffer()).equals(bytes.subarray(100, 200)));

    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('accept-ranges'), 'bytes');
    assert.equal(Number(head.headers.get('content-length')), SIZE);
    assert.equal(head.headers.get('content-encoding'), null);

    const viaApi = await fetch(`${manager.httpUrl}/api/v1/artifacts/${artifact.id}/content`, { headers: { authorization: `Bearer ${admin.token}`, range: 'bytes=0-9' } });
    assert.equal(viaApi.status, 206);
    assert.ok(Buffer.from(await viaApi.arrayBuffer()).equals(bytes.subarray(0, 10)));
    assert.equal((await fetch(`${manager.httpUrl}/api/v1/artifacts/${artifact.id}/content`)).status, 401);
  });
});
