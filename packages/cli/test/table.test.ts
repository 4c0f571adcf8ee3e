import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAsOf, formatRelative } from '../src/output/format.js';
import { clean, formatFields, formatTable } from '../src/output/table.js';

test('formatTable aligns columns and leaves no trailing blanks', () => {
  const out = formatTable(['ID', 'NAME', 'TAGS'], [
    ['1', 'edge-lyon-01', 'a,b'],
    ['22', 'x', ''],
  ]);
  assert.equal(out, ['ID  NAME          TAGS', '1   edge-lyon-01  a,b', '22  x             -'].join('\n'));
});

test('formatTable renders empty, null and numbers', () => {
  assert.equal(formatTable(['A', 'B'], [[null, 3]]), 'A  B\n-  3');
  assert.equal(formatTable(['A', 'B'], []), 'A  B');
});

test('cells from devices cannot carry terminal escapes', () => {
  assert.equal(clean('evil\u001b[2Jname\n'), 'evil?[2Jname?');
  assert.equal(formatTable(['N'], [['a\u0007b']]), 'N\na?b');
});

test('formatFields aligns values and skips empty ones', () => {
  assert.equal(formatFields([['ID', 'x'], ['Hostname', undefined], ['Name', 'edge']]), 'ID:    x\nName:  edge');
});

test('formatAsOf: the time alone on the same UTC day, with the date before it', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');
  assert.equal(formatAsOf('2025-06-01T09:02:40Z', now), '09:02 UTC');
  assert.equal(formatAsOf('2025-05-31T23:59:00Z', now), '2025-05-31 23:59 UTC');
  assert.equal(formatAsOf(null, now), 'an unknown time');
});

test('formatRelative', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');
  assert.equal(formatRelative('2025-06-01T11:59:48Z', now), '12s ago');
  assert.equal(formatRelative('2025-06-01T11:55:00Z', now), '5m ago');
  assert.equal(formatRelative('2025-06-01T09:00:00Z', now), '3h ago');
  assert.equal(formatRelative('2025-05-30T12:00:00Z', now), '2d ago');
  assert.equal(formatRelative('2025-06-02T11:00:00Z', now), 'in 23h');
  assert.equal(formatRelative('2025-06-01T12:00:02Z', now), 'just now', 'small clock skew');
  assert.equal(formatRelative(null, now), 'never');
});
