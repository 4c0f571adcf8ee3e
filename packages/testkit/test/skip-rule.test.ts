/**
 * The skip rule (docs/testing.md), checked by hiding tools rather than uninstalling them: with
 * PATH emptied, the check names the missing program and its install command; a test file that
 * needs it skips on a partial run and fails under CI; and the runner counts skips (suites
 * included) and fails a strict run that skipped anything.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, TOOLS, hasTool, missingToolsReason, strictTests } from '@pallas/testkit';

const HIDDEN = { ...process.env, PATH: '/nonexistent' };
const work = mkdtempSync(join(tmpdir(), 'pallas-skip-rule-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('the tool check', () => {
  it('finds a tool on PATH and misses it when PATH hides it', () => {
    assert.equal(hasTool(TOOLS.qemuImg), true, 'qemu-img is installed here (npm test installs it)');
    assert.equal(hasTool(TOOLS.qemuImg, HIDDEN), false);
    assert.equal(hasTool(TOOLS.mosquittoSub, HIDDEN), false, 'a non-zero exit is fine for it, "not found" is not');
  });

  it('says in one line what is missing and the apt-get command that installs it', () => {
    assert.equal(missingToolsReason([TOOLS.qemuImg, TOOLS.go]), undefined);
    assert.equal(
      missingToolsReason([TOOLS.qemu, TOOLS.qemuImg, TOOLS.curl], HIDDEN),
      'qemu-system-x86_64 and qemu-img and curl not found (apt-get install qemu-system-x86 qemu-utils curl; npm test installs it)',
    );
  });

  it('is strict under CI and under npm test, not on a partial run', () => {
    assert.equal(strictTests({ CI: 'true' }), true);
    assert.equal(strictTests({ PALLAS_TEST_STRICT: '1' }), true);
    assert.equal(strictTests({}), false);
  });
});

/** A throwaway project with one test file, run with the repository's runner (tsx through a link to node_modules). */
function project(name: string, testSource: string): string {
  const root = join(work, name);
  mkdirSync(join(root, 'packages', 'p', 'test'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'packages', 'p', 'test', 'a.test.ts'), testSource);
  return root;
}
function runTests(root: string, env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const clean = { ...process.env, ...env };
  for (const k of ['CI', 'PALLAS_TEST_STRICT'] as const) if (!(k in env)) delete clean[k];
  // Set for processes node:test starts; a runner that sees it refuses to run files itself.
  delete clean.NODE_TEST_CONTEXT;
  const res = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'run-tests.mjs')], { cwd: root, env: clean, encoding: 'utf8', timeout: 120_000 });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

describe('a test file whose tool is missing', () => {
  // The file asks for qemu-img; PATH is emptied for the run, as on a machine without it.
  const needsQemuImg = `
import { it } from 'node:test';
import { TOOLS, missingToolsReason, skipUnless } from '@pallas/testkit';
it('uses qemu-img', { skip: skipUnless(missingToolsReason([TOOLS.qemuImg], { PATH: '/nonexistent' })) }, () => {});
it('runs anyway', () => {});
`;

  it('is skipped with the reason on a partial run, and the runner lists and counts it', () => {
    const { status, out } = runTests(project('partial', needsQemuImg), {});
    assert.equal(status, 0, out);
    assert.match(out, /skipped \(SQLite\): packages\/p\/test\/a\.test\.ts › uses qemu-img: qemu-img not found \(apt-get install qemu-utils; npm test installs it\)/);
    assert.match(out, /^tests: 1 passed, 0 failed, 1 skipped$/m);
  });

  it('fails under CI, naming the install command', () => {
    const { status, out } = runTests(project('ci', needsQemuImg), { CI: 'true' });
    assert.equal(status, 1, out);
    assert.match(out, /MissingRequirementError: qemu-img not found \(apt-get install qemu-utils; npm test installs it\)/);
    assert.match(out, /^tests: 0 passed, 1 failed, 0 skipped$/m);
  });
});

describe('the runner under CI', () => {
  it('fails a run that skipped anything, counting skipped suites too', () => {
    const root = project('skips', `
import { describe, it } from 'node:test';
describe('a whole suite', { skip: 'for a reason' }, () => { it('one', () => {}); it('two', () => {}); });
it('passes', () => {});
`);
    const partial = runTests(root, {});
    assert.equal(partial.status, 0, partial.out);
    assert.match(partial.out, /^tests: 1 passed, 0 failed, 1 skipped$/m);
    const ci = runTests(root, { PALLAS_TEST_STRICT: '1' });
    assert.equal(ci.status, 1, ci.out);
    assert.match(ci.out, /1 skipped under CI \/ npm test/);
  });
});
