/**
 * The manager's own output (issue #18 point 11), from the real binary: JSON lines when stdout is
 * not a terminal, readable lines with --log-format pretty, the start banner one block before any
 * log line, and the HTTPS listener logged as https://.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ADMIN_PASSWORD, REPO_ROOT, tempDir, waitFor } from '@pallas/testkit';
import { createManagerLog } from '../src/logging.js';

async function managerOutput(extra: string[]): Promise<string> {
  const dir = tempDir('pallas-logging-');
  const child = spawn(process.execPath, [join(REPO_ROOT, 'packages/manager/bin/pallas-manager.js'),
    '--data-dir', dir.path, '--http-port', '0', '--https-port', '0', '--mqtt-port', '0', '--mqtts-port', '0', '--http-host', '127.0.0.1', '--mqtt-host', '127.0.0.1', ...extra],
  { env: { ...process.env, PALLAS_ADMIN_PASSWORD: ADMIN_PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  try {
    // The jobs log once each right after the start: wait for the last of them.
    await waitFor('start logged', () => /npx pallas devices ls/.test(out) && /stranded-tasks/.test(out), { timeoutMs: 30_000 });
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    dir.cleanup();
  }
  return out;
}

describe("the manager's output", () => {
  it('is JSON off a terminal, with the banner first and whole, and the HTTPS listener as https://', async () => {
    const out = await managerOutput([]);
    const banner = out.indexOf('Pallas manager');
    const end = out.indexOf('  npx pallas devices ls\n') + '  npx pallas devices ls\n'.length;
    const block = out.slice(banner, end);
    assert.doesNotMatch(block, /"level"/, 'no log line inside the banner');
    assert.doesNotMatch(out.slice(0, banner), /"level"/, 'no log line before it');
    const logLines = out.slice(end).split('\n').filter(Boolean);
    assert.ok(logLines.length >= 3, out);
    for (const l of logLines) assert.doesNotThrow(() => JSON.parse(l), l);
    assert.ok(logLines.some((l) => /"msg":"HTTPS listening at https:\/\/127\.0\.0\.1:\d+"/.test(l)), out);
    assert.doesNotMatch(out, /listening at http:\/\//);
  });

  it('is readable with --log-format pretty', async () => {
    const out = await managerOutput(['--log-format', 'pretty']);
    const after = out.slice(out.indexOf('  npx pallas devices ls\n'));
    assert.doesNotMatch(after, /"level"/);
    assert.match(after, /^\[\d\d:\d\d:\d\d\] INFO.*HTTPS listening at https:\/\/127\.0\.0\.1:\d+$/m);
  });

  it('holds log lines until the banner is out; auto picks pretty on a terminal', () => {
    let written = '';
    const out = Object.assign(new Writable({ write: (c: Buffer, _e, cb) => { written += c.toString(); cb(); } }), { isTTY: true });
    const log = createManagerLog({ level: 'info', format: 'auto', out, isTty: true });
    assert.equal(log.format, 'pretty');
    log.logger.info({ component: 'http' }, 'early line');
    assert.equal(written, '', 'held');
    log.releaseAfter('BANNER\n');
    log.logger.info('late line');
    assert.match(written, /^BANNER\n[^\n]*http: [^\n]*early line[^\n]*\n[^\n]*late line[^\n]*\n$/);
    assert.equal(createManagerLog({ level: 'info', format: 'auto', out, isTty: false }).format, 'json');
  });
});
