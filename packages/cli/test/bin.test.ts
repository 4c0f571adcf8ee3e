/** The real binary as a subprocess, the way scripts and the end-to-end tests run it. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { device, type FakeManager, startFakeManager, task } from './fake-manager.js';
import { skipUnless } from '@pallas/testkit';
import { tempDir } from './helpers.js';

const bin = fileURLToPath(new URL('../bin/pallas.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/main.js', import.meta.url)));
// npm test builds first; a partial run without a build skips (testkit's rule, docs/testing.md).
const skip = skipUnless(built ? undefined : 'packages/cli/dist not built (run `npx tsc -b`)');

function pallas(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += String(c)));
    child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

let mgr: FakeManager;
before(async () => {
  mgr = await startFakeManager();
  mgr.devices.push(device({ id: '11111111-1111-4111-8111-111111111111', name: 'edge-1' }));
});
after(() => mgr.close());

test('bin/pallas.js: login from stdin, list as JSON, exit codes', { skip }, async () => {
  const env = { PALLAS_CONFIG_DIR: await tempDir(), PALLAS_SERVER: mgr.url };
  const login = await pallas(['login', '-u', 'admin'], env, 'secret-pw\n');
  assert.equal(login.code, 0, login.stderr);
  const ls = await pallas(['devices', 'ls', '--json'], env);
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal((JSON.parse(ls.stdout) as { total: number }).total, 1);
  const usage = await pallas(['devices', 'ls', '--presence', 'maybe'], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^pallas: /);
  const rm = await pallas(['devices', 'rm', 'edge-1'], env);
  assert.equal(rm.code, 2);
  assert.doesNotMatch(rm.stderr, /\n\s+at /, 'no stack trace');
});

test('bin/pallas.js: tasks watch through a pipe prints plain lines and exits 3 on failure', { skip }, async () => {
  const env = { PALLAS_CONFIG_DIR: await tempDir(), PALLAS_SERVER: mgr.url, PALLAS_TOKEN: 'sess-123' };
  const t = task({ deviceId: '11111111-1111-4111-8111-111111111111', operation: { kind: 'vm.delete', vmId: 'vm-9' }, state: 'running' });
  mgr.tasks.push(t);
  mgr.onTaskCreated = undefined;
  const watching = pallas(['tasks', 'watch', t.id], env);
  while (mgr.openStreams() === 0 || !mgr.called('getTask', { id: t.id })) await new Promise((r) => setTimeout(r, 10));
  await mgr.play(t.id, [{ progress: { pct: 50, message: 'removing disks' } }, { state: 'failed', error: { code: 'host_error', message: 'disk busy' } }]);
  const r = await watching;
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'running 0%\nrunning 50%  removing disks\nfailed 50%  removing disks\n');
  assert.equal(r.stderr, `pallas: task ${t.id} failed: host_error: disk busy\n`);
});
