import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatDuration, formatGB, formatMiB, formatRate, parseDuration } from '../src/units.js';

test('parseDuration accepts units, combinations and bare seconds', () => {
  assert.equal(parseDuration('24h'), 86400);
  assert.equal(parseDuration('30m'), 1800);
  assert.equal(parseDuration('3600'), 3600);
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('7d'), 604800);
  assert.equal(parseDuration('2w'), 1209600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration(' 1D '), 86400);
  assert.equal(parseDuration(formatDuration(5 * 86400 + 3 * 3600)), 5 * 86400 + 3 * 3600, 'reads what formatDuration writes');
});

test('parseDuration rejects nonsense', () => {
  for (const bad of ['', 'h', '3x', '-5', '0', '0h', '1.5h', '30m1h', '1h1h', '24 h', '1e3', 'abc10m']) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

test('formatDuration: the two largest units', () => {
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(725), '12m 5s');
  assert.equal(formatDuration(3 * 3600 + 12 * 60), '3h 12m');
  assert.equal(formatDuration(5 * 86400 + 3 * 3600 + 59), '5d 3h');
});

test('sizes: binary units for bytes and MiB, decimal ones for GB and rates, labels matching the arithmetic', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(1024 ** 3), '1 GiB');
  assert.equal(formatBytes(150 * 1024 ** 2), '150 MiB');
  assert.equal(formatBytes(1024 * 1024 - 1), '1 MiB', 'never "1024 KiB"');
  assert.equal(formatMiB(512), '512 MiB');
  assert.equal(formatMiB(8192), '8 GiB');
  assert.equal(formatMiB(1536), '1.5 GiB');
  assert.equal(formatGB(20), '20 GB');
  assert.equal(formatGB(0.5), '500 MB');
  assert.equal(formatGB(1800), '1.8 TB');
  assert.equal(formatRate(4.2 * 2 ** 20), '4.2 MiB/s', 'a rate in the units of the sizes it moves');
  assert.equal(formatRate(999), '999 B/s');
});
