// A node:test reporter that counts what ran and writes one JSON object to its destination
// (scripts/run-tests.mjs reads it). Node's own closing counts leave skipped suites out (a
// `describe` with `skip` hides all of its tests), so the counting is done here:
// - passed: tests (not suites) that ran and passed;
// - failed: tests that failed or were cancelled, a test file that failed to load, and a suite
//   whose own hook failed (a suite that failed only because a test in it did is not counted twice);
// - skipped: every skipped test or suite, with its file, name and reason.
export default async function* summary(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, skips: [], failures: [] };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, file, skip, todo, details } = event.data;
    const suite = details?.type === 'suite';
    if (skip !== undefined && skip !== false) {
      counts.skipped++;
      counts.skips.push({ file, name, reason: typeof skip === 'string' ? skip : '(no reason given)' });
    } else if (todo !== undefined && todo !== false) {
      counts.todo++;
    } else if (event.type === 'test:pass') {
      if (!suite) counts.passed++;
    } else if (!(suite && details?.error?.failureType === 'subtestsFailed')) {
      counts.failed++;
      counts.failures.push({ file, name });
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
