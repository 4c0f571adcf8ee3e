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
import { ADMIN_PASSWORD, Api, createEnrollmentToken, tempDir, waitFor } from '@pallas/testkit';
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

async function upload(bytes: Buffer, name: string, version = '1.0'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/api/v1/artifacts?kind=patch&name=${name}&version=${version}`, {
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
    const bytes = randomBytes(300_000);
    const up = await upload(bytes, 'signed');
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
    const dup = await upload(bytes, 'signed');
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
    assert.equal((await got.arrayBuffer()).byteLength, 1000);
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
      let sent = 0;
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

  it('discards an upload cut halfway', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${base}/api/v1/artifacts?kind=patch&name=cut&version=1`, {
        method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream', 'content-length': String(3 * 1024 * 1024) },
      });
      req.on('error', () => resolve());
      req.write(randomBytes(1024 * 1024), () => setTimeout(() => {
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
      const bytes = randomBytes(70_000);
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
