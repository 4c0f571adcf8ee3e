/**
 * The CLI's access-control commands against a real manager: `pallas api-tokens` creates a
 * token that then works as PALLAS_TOKEN (and stops working once revoked), and `pallas audit`
 * shows and filters what happened.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiToken, AuditEntry, CreatedApiToken, PageOf } from '@pallas/protocol';
import { ADMIN_PASSWORD, startManagerProcess, tempDir, type ManagerProcess } from '@pallas/testkit';
import { pallas } from './support/cli.js';

let manager: ManagerProcess;
const dirs = tempDir('pallas-access-cli-');
const config = dirs.path;

before(async () => {
  manager = await startManagerProcess();
  const login = await pallas(config, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
  assert.equal(login.code, 0, login.stderr);
});

after(async () => {
  await manager?.close();
  dirs.cleanup();
});

describe('pallas api-tokens and audit', () => {
  it('creates a token usable as PALLAS_TOKEN, lists it without its secret, and revokes it', async () => {
    const created = await pallas(config, ['api-tokens', 'create', 'ci-deploy', 'viewer', '--expires-in-days', '30', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout) as CreatedApiToken;
    assert.match(token.token, /^pat_/);
    assert.equal(token.role, 'viewer');

    const viaToken = { PALLAS_SERVER: manager.httpUrl, PALLAS_TOKEN: token.token };
    const devices = await pallas(tempDir('pallas-cli-ci-').path, ['devices', 'ls'], viaToken);
    assert.equal(devices.code, 0, devices.stderr);
    const refused = await pallas(tempDir('pallas-cli-ci-').path, ['users', 'ls'], viaToken);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admin role; you are viewer/);

    const ls = await pallas(config, ['api-tokens', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /ci-deploy .*viewer/);
    assert.ok(!ls.stdout.includes(token.token));
    const lsJson = JSON.parse((await pallas(config, ['api-tokens', 'ls', '--json'])).stdout) as PageOf<ApiToken>;
    assert.ok(lsJson.items[0]!.lastUsedAt, 'last use is shown');

    const revoke = await pallas(config, ['api-tokens', 'revoke', token.id]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const after = await pallas(tempDir('pallas-cli-ci-').path, ['devices', 'ls'], viaToken);
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /revoked/);
  });

  it('shows the audit log as a table and as JSON, filtered', async () => {
    const table = await pallas(config, ['audit', '--action', 'token.', '--since', '1h']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /TIME +ACTOR +ACTION +TARGET +OUTCOME +REASON +FROM/);
    assert.match(table.stdout, /admin +token\.revoke +api-token:ci-deploy +ok +- +127\.0\.0\.1/);
    assert.match(table.stdout, /admin +token\.create +api-token:ci-deploy +ok/);
    const json = JSON.parse((await pallas(config, ['audit', '--actor', 'admin', '--json'])).stdout) as PageOf<AuditEntry>;
    assert.ok(json.items.length >= 3);
    assert.ok(json.items.every((e) => e.actor.name === 'admin'));
    assert.ok(json.items.some((e) => e.action === 'login.ok'));
    const bad = await pallas(config, ['audit', '--since', 'last tuesday']);
    assert.equal(bad.code, 2);
  });
});
