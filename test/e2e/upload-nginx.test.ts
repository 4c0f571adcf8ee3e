/**
 * Artifact uploads through the load balancer (deploy/nginx/pallas.conf, Debian's nginx): the
 * client's `Expect: 100-continue` is answered by nginx itself, which streams the body on
 * (`proxy_request_buffering off`), so the manager refuses a body that is on its way. The
 * refusal must still reach the client as the API's error, every time (it was nginx's 502).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PallasApiError, PallasClient } from '@pallas/client';
import { uploadFile } from '@pallas/client/node';
import { ADMIN_PASSWORD, nginxMissingReason, patchFile, skipUnless, startManagerProcess, startNginx, tempDir, type ManagerProcess, type Nginx } from '@pallas/testkit';

const LIMIT = 4_000_000;

describe('artifact uploads through nginx', { skip: skipUnless(nginxMissingReason()) }, () => {
  let manager: ManagerProcess;
  let nginx: Nginx;
  let admin: PallasClient;
  const dirs = tempDir('pallas-upload-nginx-');

  before(async () => {
    manager = await startManagerProcess({ args: ['--max-artifact-bytes', String(LIMIT)] });
    nginx = await startNginx({ upstreams: [new URL(manager.httpUrl).host] });
    admin = await PallasClient.login({ server: nginx.httpUrl, username: 'admin', password: ADMIN_PASSWORD });
  });

  after(async () => {
    await nginx?.stop();
    await manager?.close();
    dirs.cleanup();
  });

  it('an upload over the limit is refused with the API code each time, not 502', async () => {
    // nginx asks for the body itself and streams it on: the manager's refusal meets it mid-way.
    const big = join(dirs.path, 'big.bin');
    writeFileSync(big, Buffer.alloc(64_000_000));
    for (let i = 0; i < 10; i++) {
      await assert.rejects(uploadFile(admin, big, { kind: 'patch', name: `too-big-${i}`, version: '1' }), (e: unknown) => {
        assert.ok(e instanceof PallasApiError, String(e));
        assert.equal(e.code, 'payload_too_large', `attempt ${i}: ${e.message}`);
        return true;
      });
    }
    assert.equal((await admin.call('listArtifacts', { query: {} })).items.length, 0);
  });

  it('an upload refused mid-way for what it holds is refused with the API code, not 502', async () => {
    const file = join(dirs.path, 'not-a-patch.bin');
    writeFileSync(file, Buffer.alloc(LIMIT - 1000));
    for (let i = 0; i < 5; i++) {
      await assert.rejects(uploadFile(admin, file, { kind: 'patch', name: `not-a-patch-${i}`, version: '1' }), (e: unknown) => {
        assert.ok(e instanceof PallasApiError, String(e));
        assert.match(e.message, /not a valid patch artifact/, `attempt ${i}: ${e.message}`);
        return true;
      });
    }
  });

  it('an upload within the limit is stored whole', async () => {
    const file = join(dirs.path, 'fits.tar');
    writeFileSync(file, patchFile('1', Buffer.alloc(LIMIT - 10_000, 7)));
    const stored = await uploadFile(admin, file, { kind: 'patch', name: 'fits', version: '1' });
    assert.equal(stored.size, readFileSync(file).length);
    assert.equal(stored.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
  });
});
