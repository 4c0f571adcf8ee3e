/**
 * The Quickstart path: a manager started with demo devices, driven by the real `pallas`
 * CLI as a separate process, the way a newcomer uses it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, BIN, startManagerProcess, tempDir, waitFor, type ManagerProcess } from '@pallas/testkit';

const DEMO_DEVICES = 3;

function cli(configDir: string, args: string[]) {
  const res = spawnSync(process.execPath, [BIN.cli, ...args], {
    env: { ...process.env, PALLAS_CONFIG_DIR: configDir, PALLAS_SERVER: '', PALLAS_TOKEN: '', PALLAS_PASSWORD: '' },
    encoding: 'utf8',
    input: '',
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('quickstart: manager with demo devices, seen through the CLI', () => {
  let manager: ManagerProcess;
  const config = tempDir('pallas-cli-');
  const viewerConfig = tempDir('pallas-cli-viewer-');

  before(async () => {
    manager = await startManagerProcess({ args: ['--demo-devices', String(DEMO_DEVICES)] });
  });
  after(async () => {
    await manager?.close();
    config.cleanup();
    viewerConfig.cleanup();
  });

  it('prints how to log in and see devices', () => {
    assert.match(manager.output(), /npx pallas login --server http:\/\/127\.0\.0\.1:\d+ -u admin/);
    assert.match(manager.output(), /npx pallas devices ls/);
  });

  it('shows the demo devices online in `pallas devices ls` within 30 s', async () => {
    const startedAt = Date.now();
    const login = cli(config.path, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', ADMIN_PASSWORD]);
    assert.equal(login.code, 0, login.stderr);
    const online = await waitFor('demo devices online', () => {
      const ls = cli(config.path, ['devices', 'ls', '--json']);
      if (ls.code !== 0) throw new Error(ls.stderr);
      const page = JSON.parse(ls.stdout) as { items: Array<{ presence: string; name: string }> };
      const items = page.items ?? page;
      return items.filter((d) => d.presence === 'online').length === DEMO_DEVICES && items;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(Date.now() - startedAt < 30_000);
    const table = cli(config.path, ['devices', 'ls']);
    assert.equal(table.code, 0);
    for (const d of online) assert.ok(table.stdout.includes(d.name), `table lists ${d.name}`);
    assert.match(table.stdout, /online/);
  });

  it('shows, renames and tags a device by name', () => {
    const ls = JSON.parse(cli(config.path, ['devices', 'ls', '--json']).stdout);
    const first = (ls.items ?? ls)[0] as { id: string; name: string };
    const show = cli(config.path, ['devices', 'show', first.name]);
    assert.equal(show.code, 0, show.stderr);
    assert.ok(show.stdout.includes(first.id));
    assert.equal(cli(config.path, ['devices', 'rename', first.id, 'renamed-by-cli']).code, 0);
    assert.equal(cli(config.path, ['devices', 'tag', 'renamed-by-cli', 'eu', 'shop']).code, 0);
    const shown = JSON.parse(cli(config.path, ['devices', 'show', first.id, '--json']).stdout);
    assert.equal(shown.name, 'renamed-by-cli');
    assert.deepEqual(shown.tags, ['eu', 'shop']);
  });

  it('manages users, and a viewer gets a one-line refusal', () => {
    const add = cli(config.path, ['users', 'add', 'vera', '--role', 'viewer', '--password', 'vera-password']);
    assert.equal(add.code, 0, add.stderr);
    const users = JSON.parse(cli(config.path, ['users', 'ls', '--json']).stdout);
    assert.ok(JSON.stringify(users).includes('vera'));

    assert.equal(cli(viewerConfig.path, ['login', '--server', manager.httpUrl, '-u', 'vera', '-p', 'vera-password']).code, 0);
    assert.equal(cli(viewerConfig.path, ['devices', 'ls']).code, 0);
    const refused = cli(viewerConfig.path, ['users', 'ls']);
    assert.notEqual(refused.code, 0);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /^pallas: .*admin/);

    assert.equal(cli(config.path, ['users', 'rm', 'vera']).code, 0);
  });

  it('creates enrollment tokens and prints the agent command', () => {
    const created = cli(config.path, ['tokens', 'create', '--max-uses', '5', '--ttl', '2h']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /pallas-agent --manager http:\/\/127\.0\.0\.1:\d+ --token pet_/);
    const tokens = JSON.parse(cli(config.path, ['tokens', 'ls', '--json']).stdout);
    assert.ok((tokens.items ?? tokens).some((t: { maxUses: number }) => t.maxUses === 5));
  });

  it('fails with a one-line message and a non-zero exit on errors', () => {
    const missing = cli(config.path, ['devices', 'show', '00000000-0000-4000-8000-000000000000']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pallas: no device with ID or name/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
    const badLogin = cli(tempDir().path, ['login', '--server', manager.httpUrl, '-u', 'admin', '-p', 'wrong-password']);
    assert.equal(badLogin.code, 1);
    assert.equal(badLogin.stderr.trim().split('\n').length, 1);
  });
});
