#!/usr/bin/env node
// Runs every package's tests with Node's own test runner (docs/testing.md). TypeScript test
// files are loaded through tsx; the packages they import are the compiled ones (`npm test`
// builds first). Node 20's `--test` takes no globs, so the files are listed here.
//
//   node scripts/run-tests.mjs [--db sqlite|postgres|both] [path fragment …]
//
// --db both (what `npm test` runs) runs the selected files on SQLite, then runs again those of
// them that start a manager (POSTGRES_PASS) with PALLAS_TEST_DATABASE=postgres, so that every
// manager they start gets a fresh PostgreSQL database. At the end it prints what was skipped
// and why, and one closing line with the counts; under CI or PALLAS_TEST_STRICT=1 (npm test)
// a skipped test fails the run.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPORTER = fileURLToPath(new URL('./test-summary-reporter.mjs', import.meta.url));

/**
 * The PostgreSQL pass: every end-to-end test and the manager's tests, which start managers on
 * the default store. Left out: files that already run each case on both databases themselves,
 * and the soak, which runs on PostgreSQL in either pass (a cluster has no other store).
 */
const POSTGRES_PASS = ['test/e2e/', 'packages/manager/test/'];
const RUN_BOTH_STORES_THEMSELVES = [
  'packages/manager/test/store.test.ts',
  'packages/manager/test/tasks.test.ts',
  'packages/manager/test/task-reports.test.ts',
  'packages/manager/test/rollout-engine.test.ts',
  'packages/manager/test/audit-store.test.ts',
  'packages/manager/test/artifacts.test.ts',
  'packages/manager/test/migration-fixtures.test.ts',
  'packages/manager/test/cluster-store.test.ts',
  'packages/manager/test/device-inventory.test.ts',
  // Always on PostgreSQL (several managers share one database): a second pass would repeat it.
  'test/e2e/cluster.test.ts',
  'test/e2e/cluster-script.test.ts',
  'test/e2e/soak.test.ts',
];

const args = process.argv.slice(2);
let db = 'sqlite';
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--db') db = args[++i];
  else if (args[i].startsWith('--db=')) db = args[i].slice(5);
  else only.push(args[i]);
}
if (!['sqlite', 'postgres', 'both'].includes(db)) {
  console.error(`--db must be sqlite, postgres or both, not "${db}"`);
  process.exit(2);
}
const strict = Boolean(process.env.CI) || process.env.PALLAS_TEST_STRICT === '1';

const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts')) files.push(path);
  }
}
try { walk('test'); } catch { /* no cross-package tests */ }
for (const pkg of readdirSync('packages')) {
  for (const sub of ['test', 'src']) {
    const dir = join('packages', pkg, sub);
    try { if (statSync(dir).isDirectory()) walk(dir); } catch { /* package without tests */ }
  }
}
const selected = (only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files).sort();
const onPostgres = selected.filter((f) => POSTGRES_PASS.some((p) => f.startsWith(p)) && !RUN_BOTH_STORES_THEMSELVES.includes(f));

const passes = [];
if (db !== 'postgres') passes.push({ name: 'SQLite', files: selected, env: { PALLAS_TEST_DATABASE: 'sqlite' } });
if (db !== 'sqlite') {
  if (!process.env.PALLAS_TEST_PG_URL) {
    console.error('the PostgreSQL pass needs PALLAS_TEST_PG_URL (npm test sets it: postgres://postgres@127.0.0.1:5432/postgres)');
    process.exit(2);
  }
  passes.push({ name: 'PostgreSQL', files: onPostgres, env: { PALLAS_TEST_DATABASE: 'postgres' } });
}
if (passes.every((p) => p.files.length === 0)) {
  console.error('no test files matched');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'pallas-test-run-'));
const total = { passed: 0, failed: 0, skipped: 0, todo: 0, skips: [], failures: [] };
const lines = [];
let status = 0;
for (const pass of passes) {
  if (pass.files.length === 0) continue;
  console.log(`\n== ${pass.name} pass: ${pass.files.length} test files`);
  const summaryFile = join(work, `${pass.name}.json`);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000',
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      `--test-reporter=${REPORTER}`, `--test-reporter-destination=${summaryFile}`,
      ...pass.files],
    { stdio: 'inherit', env: { ...process.env, ...pass.env } },
  );
  const seconds = Math.round((Date.now() - started) / 1000);
  let counts;
  try {
    counts = JSON.parse(readFileSync(summaryFile, 'utf8'));
  } catch {
    counts = { passed: 0, failed: 1, skipped: 0, todo: 0, skips: [], failures: [{ file: '(runner)', name: `the ${pass.name} pass ended without a summary` }] };
  }
  if (result.status !== 0) status = result.status ?? 1;
  for (const k of ['passed', 'failed', 'skipped', 'todo']) total[k] += counts[k];
  total.skips.push(...counts.skips.map((s) => ({ ...s, pass: pass.name })));
  total.failures.push(...counts.failures.map((f) => ({ ...f, pass: pass.name })));
  lines.push(`${pass.name} pass: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped in ${seconds} s`);
}
rmSync(work, { recursive: true, force: true });

const where = (f) => (f.file ? relative(process.cwd(), f.file) : '');
console.log('');
for (const s of total.skips) console.log(`skipped (${s.pass}): ${where(s)} › ${s.name}: ${s.reason}`);
for (const f of total.failures) console.log(`failed (${f.pass}): ${where(f)} › ${f.name}`);
for (const line of lines) console.log(line);
if (total.skipped > 0 && strict) {
  console.log(`${total.skipped} skipped under CI / npm test: every test must run here (docs/testing.md, "the skip rule")`);
  status = status || 1;
}
if (total.failed > 0) status = status || 1;
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(status);
