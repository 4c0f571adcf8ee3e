/**
 * Artifacts in a manager started in-process: signed manifests that verify with the key from
 * enrollment and GET /signing-key, key files 0600, Range parsing, delete refused while an
 * unfinished task names the artifact, and a cut upload that leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SignedArtifact, SigningKey } from '@pallas/protocol';
import { readFile } from 'node:fs/promises';
import { ADMIN_PASSWORD, Api, agentBundleFile, createEnrollmentToken, patchFile, skipUnless, tarOf, tempDir, waitFor } from '@pallas/testkit';
import { buildOva, ovaSkipReason, ovfXml } from '../../agent/test/support/ova-builder.js';
import { startManager, type RunningManager } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { canonicalJson } from '@pallas/protocol';
import { verifyManifest } from '../src/services/artifacts/manager-keys.js';
import { newTaskId } from '../src/services/tasks/task-id.js';
import { parseRange } from '../src/transport/http/range.js';
import { enroll } from './support.js';
import { PG_URL, pgSkip, postgresTarget } from './store-targets.js';

let dir: ReturnType<typeof tempDir>;
let manager: RunningManager;
let base: string;
let admin: Api;

/** Uploads `bytes` as is with `kind`, or (no kind) as the payload of a valid patch. */
async function upload(bytes: Buffer, name: string, version = '1.0', kind?: string): Promise<{ status: number; body: any }> {
  return uploadRaw(kind ? bytes : patchFile(version, bytes), name, version, kind ?? 'patch');
}

async function uploadRaw(bytes: Buffer, name: string, version: string, kind: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/api/v1/artifacts?kind=${kind}&name=${name}&version=${version}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  return { status: res.status, body: await res.json() };
}

before(async () => {
  dir = tempDir('pallas-artifacts-');
  manager = await startManager(loadConfig([
    '--data-dir', dir.path, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0', '--http-host', '127.0.0.1', '--mqtt-host', '127.0.0.1',
    '--log-level', 'silent', '--admin-password', ADMIN_PASSWORD, '--max-artifact-bytes', String(4 * 1024 * 1024),
  ], {}));
  base = `http://127.0.0.1:${manager.ports.http}`;
  admin = await new Api(base).login('admin', ADMIN_PASSWORD);
});

after(async () => {
  await manager?.stop();
  dir?.cleanup();
});

describe('canonical JSON and ranges', () => {
  it('sorts keys and drops whitespace', () => {
    assert.equal(canonicalJson({ b: 1, a: 'x', c: { z: true, y: null } }), '{"a":"x","b":1,"c":{"y":null,"z":true}}');
  });

  it('parses single byte ranges and refuses what is outside the file', () => {
    assert.deepEqual(parseRange('bytes=0-99', 1000), { kind: 'range', range: { start: 0, end: 99 } });
    assert.deepEqual(parseRange('bytes=990-', 1000), { kind: 'range', range: { start: 990, end: 999 } });
    assert.deepEqual(parseRange('bytes=-10', 1000), { kind: 'range', range: { start: 990, end: 999 } });
    assert.deepEqual(parseRange('bytes=500-5000', 1000), { kind: 'range', range: { start: 500, end: 999 } });
    assert.deepEqual(parseRange('bytes=1000-', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-0', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=0-1,5-9', 1000), { kind: 'full' });
    assert.deepEqual(parseRange('items=0-1', 1000), { kind: 'full' });
    assert.deepEqual(parseRange('bytes=9-1', 1000), { kind: 'full' });
  });
});

describe('artifacts', () => {
  it('signs each manifest with the key devices get at enrollment', async () => {
    const bytes = patchFile('1.0', randomBytes(300_000));
    const up = await uploadRaw(bytes, 'signed', '1.0', 'patch');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const a = up.body as SignedArtifact;
    assert.equal(a.size, bytes.length);
    assert.equal(a.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(a.manifest, { id: a.id, kind: 'patch', name: 'signed', version: '1.0', size: bytes.length, sha256: a.sha256 });

    const key = (await admin.get<SigningKey>('/api/v1/signing-key')).body;
    assert.equal(key.algorithm, 'ed25519');
    assert.equal(a.keyId, key.keyId);
    const token = await createEnrollmentToken(admin);
    const enrolled = await enroll(new Api(base), token, 'artifact-device');
    assert.deepEqual(enrolled.response.signingKey, key, 'enrollment hands out the same key');

    const shown = (await admin.get<SignedArtifact>(`/api/v1/artifacts/${a.id}`)).body;
    assert.ok(verifyManifest(shown.manifest, shown.signature, key.publicKeyPem));
    assert.ok(!verifyManifest({ ...shown.manifest, size: shown.size + 1 }, shown.signature, key.publicKeyPem), 'a changed manifest fails');

    for (const f of ['signing-key.pem', 'download-url.key']) {
      assert.equal(statSync(join(dir.path, f)).mode & 0o777, 0o600, `${f} is 0600`);
    }
    const dup = await uploadRaw(bytes, 'signed', '1.0', 'patch');
    assert.equal(dup.status, 409);
    assert.match(dup.body.error.message, /already exists/);
  });

  it('refuses to delete an artifact a queued task uses, and deletes it once the task is final', async () => {
    const up = await upload(randomBytes(1000), 'in-use');
    assert.equal(up.status, 201);
    const artifactId = (up.body as SignedArtifact).id;
    const token = await createEnrollmentToken(admin);
    const { deviceId } = await enroll(new Api(base), token, 'deploy-target');
    // E2's vm.deploy is not on this branch yet: a task row shaped like one that names the artifact.
    const taskId = newTaskId();
    const now = new Date().toISOString();
    await manager.store.write.insertInto('tasks').values({
      id: taskId, device_id: deviceId, kind: 'vm.deploy', operation: JSON.stringify({ kind: 'vm.deploy', source: { kind: 'artifact', artifactId } }),
      vm_id: null, state: 'queued', progress_pct: 0, progress_message: null, cancel_requested: 0, error_code: null, error_message: null,
      result_vm: null, late_result: null, retry_of: null, attempt: 1, created_by: 'admin', created_at: now, sent_at: null, started_at: null,
      finished_at: null, deadline_at: new Date(Date.now() + 3_600_000).toISOString(), updated_at: now,
    }).execute();
    // The URL the task hands its agent: relative, signed for the task's device.
    const forTask = await manager.services.artifacts.downloadUrlForTask(taskId, artifactId, 600);
    assert.match(forTask.url, new RegExp(`^/dl/${artifactId}\\?device=${deviceId}&exp=\\d+&sig=`));
    const got = await fetch(`${base}${forTask.url}`);
    assert.equal(got.status, 200);
    assert.equal((await got.arrayBuffer()).byteLength, up.body.size);
    const other = (await upload(randomBytes(10), 'not-in-task')).body as SignedArtifact;
    await assert.rejects(manager.services.artifacts.downloadUrlForTask(taskId, other.id, 600), /does not use artifact/);

    const refused = await admin.delete(`/api/v1/artifacts/${artifactId}`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, new RegExp(`used by task ${taskId}`));
    assert.equal((await admin.get(`/api/v1/artifacts/${artifactId}`)).status, 200);

    await manager.store.write.updateTable('tasks').set({ state: 'succeeded', finished_at: now }).where('id', '=', taskId).execute();
    assert.equal((await admin.delete(`/api/v1/artifacts/${artifactId}`)).status, 204);
    assert.equal((await admin.get(`/api/v1/artifacts/${artifactId}`)).status, 404);
    assert.ok(!readdirSync(join(dir.path, 'artifacts')).includes(artifactId), 'the file is gone');
  });

  it('turns away uploads over the limit with 413 and keeps nothing', async () => {
    const declared = await upload(randomBytes(5 * 1024 * 1024), 'too-big');
    assert.equal(declared.status, 413);
    assert.match(declared.body.error.message, /limit of 4194304 bytes/);

    // Chunked, so the length is unknown up front: refused once the limit is crossed.
    const status = await new Promise<number | string>((resolve) => {
      const req = request(`${base}/api/v1/artifacts?kind=patch&name=too-big-chunked&version=1`, {
        method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => resolve(`error ${err.message}`));
      const chunk = randomBytes(256 * 1024);
      // A valid patch's descriptor, then the first member's header announcing 6 MiB of payload.
      const head = patchFile('1', Buffer.alloc(6 * 1024 * 1024)).subarray(0, 2048);
      let sent = head.length;
      req.write(head);
      const pump = () => {
        while (sent < 6 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    // The manager answers 413 and closes; a client still sending may see the reset first.
    assert.ok(status === 413 || String(status).startsWith('error'), `got ${status}`);
    await waitFor('the partial upload to be removed', () => readdirSync(join(dir.path, 'artifacts', '.incoming')).length === 0);
    const list = (await admin.get('/api/v1/artifacts?name=too-big-chunked')).body;
    assert.equal(list.total, 0);
  });

  it('asks a client that expects 100-continue for the bytes only once the upload is accepted', async () => {
    /** Sends the headers with Expect and the body only when asked; what came back, in order. */
    const expecting = (name: string, body: Buffer, extra: Record<string, string> = {}) => new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const req = request(`${base}/api/v1/artifacts?kind=patch&name=${name}&version=1`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream', 'content-length': String(body.length), expect: '100-continue', ...extra,
        },
      }, (res) => {
        seen.push(String(res.statusCode), `connection: ${res.headers.connection}`);
        res.resume();
        res.on('end', () => {
          req.destroy();
          resolve(seen);
        });
      });
      req.on('continue', () => {
        seen.push('100');
        req.end(body);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.deepEqual(await expecting('continued', patchFile('1', randomBytes(1000))), ['100', '201', 'connection: keep-alive']);
    // Refused on its declared size, its role or its media type: no 100, and the bytes never go.
    assert.deepEqual(await expecting('too-big-asked', Buffer.alloc(5 * 1024 * 1024)), ['413', 'connection: close']);
    assert.deepEqual(await expecting('no-token', Buffer.alloc(10), { authorization: 'Bearer nope' }), ['401', 'connection: close']);
    assert.deepEqual(await expecting('as-text', Buffer.alloc(10), { 'content-type': 'text/plain' }), ['415', 'connection: close']);
    // Any other route is asked for its body as it is about to be read.
    const login = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const body = JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD });
      const req = request(`${base}/api/v1/auth/login`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), expect: '100-continue' },
      }, (res) => {
        seen.push(String(res.statusCode));
        res.resume().on('end', () => resolve(seen));
      });
      req.on('continue', () => {
        seen.push('100');
        req.end(body);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.deepEqual(login, ['100', '200']);
  });

  it('discards an upload cut halfway', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${base}/api/v1/artifacts?kind=patch&name=cut&version=1`, {
        method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream', 'content-length': String(3 * 1024 * 1024) },
      });
      req.on('error', () => resolve());
      req.write(patchFile('1', randomBytes(3 * 1024 * 1024)).subarray(0, 1024 * 1024), () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 200));
    });
    await waitFor('the partial upload to be removed', () => readdirSync(join(dir.path, 'artifacts', '.incoming')).length === 0);
    assert.equal((await admin.get('/api/v1/artifacts?name=cut')).body.total, 0);
    // And the same label can be uploaded afterwards.
    assert.equal((await upload(randomBytes(10), 'cut', '1')).status, 201);
  });

  it('wants the raw bytes as application/octet-stream', async () => {
    const res = await admin.post('/api/v1/artifacts?kind=patch&name=json&version=1', { a: 1 });
    assert.equal(res.status, 415);
    assert.match(res.body.error.message, /application\/octet-stream/);
  });
});

describe('what each kind must be (checked as the bytes stream in)', () => {
  const refused = async (bytes: Buffer, kind: string, name: string, version: string, ...mentions: RegExp[]): Promise<void> => {
    const res = await uploadRaw(bytes, name, version, kind);
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_artifact');
    assert.match(res.body.error.message, new RegExp(`not a valid ${kind} artifact`));
    for (const m of mentions) assert.match(res.body.error.message, m);
    assert.equal((await admin.get(`/api/v1/artifacts?name=${name}`)).body.total, 0, 'no row');
    await waitFor('nothing left in .incoming', () => readdirSync(join(dir.path, 'artifacts', '.incoming')).length === 0);
  };

  it('takes a real OVA and refuses what is not one, whatever the file is called', { skip: skipUnless(ovaSkipReason) }, async () => {
    const work = tempDir('pallas-ova-up-');
    try {
      const { path } = await buildOva(work.path, { name: 'appliance' });
      const ova = await readFile(path);
      const ok = await uploadRaw(ova, 'appliance', '1', 'ova');
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.size, ova.length);

      await refused(Buffer.from('hello\n'), 'ova', 'six-bytes', '1', /not a tar archive/);
      // A tar, but the descriptor's disk is not in it (only the .ovf member is kept).
      const ovfOnly = tarOf([{ name: 'appliance.ovf', data: ovfXml({ name: 'appliance', vcpus: 1, memoryMB: 256, diskMiB: 16, network: 'VM Network', vmdkName: 'appliance-disk1.vmdk', vmdkBytes: 1000 }) }]);
      await refused(ovfOnly, 'ova', 'no-disk', '1', /appliance-disk1\.vmdk, not in the archive/);
      await refused(tarOf([{ name: 'readme.txt', data: 'hi' }]), 'ova', 'no-ovf', '1', /no \.ovf descriptor/);
      await refused(tarOf([{ name: 'x.ovf', data: '<Envelope><oops' }]), 'ova', 'bad-xml', '1', /x\.ovf is not well-formed XML/);
      // Truncated in the middle of the disk file.
      await refused(ova.subarray(0, Math.floor(ova.length / 2)), 'ova', 'truncated', '1', /ends in the middle of appliance-disk1\.vmdk/);
      // An OVA uploaded as a patch is judged as a patch.
      await refused(ova, 'patch', 'ova-as-patch', '1', /first file is pallas-patch\.json; this one starts with appliance\.ovf/);
    } finally {
      work.cleanup();
    }
  });

  it('wants an agent bundle that names the version it is uploaded as', async () => {
    assert.equal((await uploadRaw(agentBundleFile('0.3.0'), 'pallas-agent', '0.3.0', 'agent')).status, 201);
    await refused(Buffer.from('#!/bin/sh\necho hi\n'), 'agent', 'shell', '1', /not a pallas-agent bundle: its first line must be "\/\/ pallas-agent <version>"/);
    await refused(agentBundleFile('0.4.0'), 'agent', 'mislabelled', '0.5.0', /names version 0\.4\.0, but the upload is labelled version 0\.5\.0/);
    await refused(Buffer.from('// pallas-agent 1'), 'agent', 'one-line', '1', /not a pallas-agent bundle/);
  });

  it('wants a patch in the patch format', async () => {
    await refused(randomBytes(4096), 'patch', 'random', '1', /not a tar archive/);
    await refused(tarOf([{ name: 'pallas-patch.json', data: '{"name":"x"}' }]), 'patch', 'no-version', '1', /does not name the patch's version/);
    await refused(tarOf([{ name: 'pallas-patch.json', data: 'nope' }]), 'patch', 'not-json', '1', /pallas-patch\.json is not valid JSON/);
    await refused(patchFile('2'), 'patch', 'mislabelled', '1', /says version 2, but the upload is labelled version 1/);
    await refused(Buffer.alloc(0), 'patch', 'empty', '1', /the file is empty/);
  });
});

describe('artifacts on PostgreSQL', { skip: pgSkip() }, () => {
  it('stores, lists (sizes as numbers), refuses a delete in use and deletes', async () => {
    const target = await postgresTarget(PG_URL!);
    const pgDir = tempDir('pallas-artifacts-pg-');
    const pgManager = await startManager(loadConfig([
      '--data-dir', pgDir.path, '--database-url', target.url, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0', '--http-host', '127.0.0.1',
      '--mqtt-host', '127.0.0.1', '--log-level', 'silent', '--admin-password', ADMIN_PASSWORD,
    ], {}));
    try {
      const pgBase = `http://127.0.0.1:${pgManager.ports.http}`;
      const pgAdmin = await new Api(pgBase).login('admin', ADMIN_PASSWORD);
      const bytes = agentBundleFile('0.2.0', randomBytes(70_000 - 22));
      const res = await fetch(`${pgBase}/api/v1/artifacts?kind=agent&name=pallas-agent&version=0.2.0`, {
        method: 'POST', headers: { authorization: `Bearer ${pgAdmin.token}`, 'content-type': 'application/octet-stream' }, body: bytes,
      });
      assert.equal(res.status, 201);
      const a = (await res.json()) as SignedArtifact;
      const list = (await pgAdmin.get('/api/v1/artifacts?kind=agent')).body;
      assert.equal(list.total, 1);
      assert.strictEqual(list.items[0].size, 70_000);
      const shown = (await pgAdmin.get<SignedArtifact>(`/api/v1/artifacts/${a.id}`)).body;
      assert.ok(verifyManifest(shown.manifest, shown.signature, pgManager.services.artifacts.signingKey.publicKeyPem));

      const { deviceId } = await enroll(new Api(pgBase), await createEnrollmentToken(pgAdmin), 'pg-device');
      const now = new Date().toISOString();
      await pgManager.store.write.insertInto('tasks').values({
        id: newTaskId(), device_id: deviceId, kind: 'agent.update', operation: JSON.stringify({ kind: 'agent.update', artifactId: a.id }),
        vm_id: null, state: 'running', progress_pct: 0, progress_message: null, cancel_requested: 0, error_code: null, error_message: null,
        result_vm: null, late_result: null, retry_of: null, attempt: 1, created_by: 'admin', created_at: now, sent_at: now, started_at: now,
        finished_at: null, deadline_at: new Date(Date.now() + 3_600_000).toISOString(), updated_at: now,
      }).execute();
      assert.equal((await pgAdmin.delete(`/api/v1/artifacts/${a.id}`)).status, 409);
      await pgManager.store.write.updateTable('tasks').set({ state: 'failed', finished_at: now }).execute();
      assert.equal((await pgAdmin.delete(`/api/v1/artifacts/${a.id}`)).status, 204);
    } finally {
      await pgManager.stop();
      pgDir.cleanup();
      await target.dispose();
    }
  });
});
