import assert from 'node:assert/strict';
import { readFile, stat, writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { homedir } from 'node:os';
import { configDir, configPath, DEFAULT_SERVER, loadConfig, resolveServer, resolveToken, saveConfig } from '../src/config.js';
import { CliError, UsageError } from '../src/errors.js';
import { tempDir } from './helpers.js';

test('config directory: PALLAS_CONFIG_DIR > XDG_CONFIG_HOME/pallas > ~/.config/pallas', () => {
  assert.equal(configDir({ PALLAS_CONFIG_DIR: '/a', XDG_CONFIG_HOME: '/b' }), '/a');
  assert.equal(configDir({ XDG_CONFIG_HOME: '/b' }), '/b/pallas');
  assert.equal(configDir({}), join(homedir(), '.config', 'pallas'));
  assert.equal(configPath({ PALLAS_CONFIG_DIR: '/a' }), '/a/config.json');
});

test('saveConfig writes a 0600 file in a 0700 directory, atomically', async () => {
  const dir = join(await tempDir(), 'nested', 'pallas');
  const path = join(dir, 'config.json');
  await saveConfig(path, { server: 'http://m:8080', token: 't', username: 'admin', expiresAt: '2030-01-01T00:00:00Z' });
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(await loadConfig(path), { server: 'http://m:8080', token: 't', username: 'admin', expiresAt: '2030-01-01T00:00:00Z' });

  // An existing, too-open directory and file are tightened on the next save.
  await chmod(dir, 0o755);
  await chmod(path, 0o644);
  await saveConfig(path, { server: 'http://m:8080' });
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { server: 'http://m:8080' });
});

test('loadConfig: missing file is empty, broken file is a clear error, odd fields are dropped', async () => {
  const dir = await tempDir();
  assert.deepEqual(await loadConfig(join(dir, 'none.json')), {});
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{nope');
  await assert.rejects(loadConfig(bad), (e: unknown) => e instanceof CliError && /not valid JSON/.test(e.message));
  const odd = join(dir, 'odd.json');
  await mkdir(dir, { recursive: true });
  await writeFile(odd, JSON.stringify({ server: 'http://x', token: 42, extra: 'y' }));
  assert.deepEqual(await loadConfig(odd), { server: 'http://x' });
});

test('server precedence: flag > PALLAS_SERVER > saved > default', () => {
  const saved = { server: 'http://saved:1/' };
  const env = { PALLAS_SERVER: 'http://env:2' };
  assert.deepEqual(resolveServer('http://flag:3/', env, saved), { server: 'http://flag:3', source: 'flag' });
  assert.deepEqual(resolveServer(undefined, env, saved), { server: 'http://env:2', source: 'env' });
  assert.deepEqual(resolveServer(undefined, {}, saved), { server: 'http://saved:1', source: 'config' });
  assert.deepEqual(resolveServer(undefined, {}, {}), { server: DEFAULT_SERVER, source: 'default' });
  assert.equal(resolveServer('https://h/prefix/', {}, {}).server, 'https://h/prefix');
  assert.throws(() => resolveServer('not a url', {}, {}), UsageError);
  assert.throws(() => resolveServer('ftp://h', {}, {}), UsageError);
});

test('token precedence: PALLAS_TOKEN > saved, and a saved token only goes to its own server', () => {
  const saved = { server: 'http://m:8080/', token: 'saved-t' };
  assert.equal(resolveToken('http://m:8080', { PALLAS_TOKEN: 'env-t' }, saved), 'env-t');
  assert.equal(resolveToken('http://m:8080', {}, saved), 'saved-t');
  assert.equal(resolveToken('http://other:8080', {}, saved), undefined);
  assert.equal(resolveToken('http://other:8080', { PALLAS_TOKEN: 'env-t' }, saved), 'env-t');
  assert.equal(resolveToken('http://m:8080', {}, {}), undefined);
});
