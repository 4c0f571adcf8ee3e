import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatDuration, formatGB, formatLength, formatMiB, formatRate, formatSpan, parseDuration, presenceInWords } from '../src/units.js';

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

test('history in words: spans, lengths and presence, as the CLI and the console say them', () => {
  assert.equal(formatSpan(86400), '24 h');
  assert.equal(formatSpan(7 * 86400), '7 d');
  assert.equal(formatLength(41 * 60 + 20), '41 min');
  assert.equal(formatLength(2 * 3600 + 5 * 60), '2 h 5 min');
  assert.equal(formatLength(12), '12 s');
  assert.equal(presenceInWords([], 86400), 'no presence recorded in 24 h');
  assert.equal(presenceInWords([
    { state: 'offline', times: 3, totalSec: 4200, longestSec: 2460 },
    { state: 'online', times: 3, totalSec: 82200, longestSec: 40000 },
  ], 86400), 'offline 3 times in 24 h, longest 41 min (1 h 10 min in all); online 95.1 % of the time');
  assert.equal(presenceInWords([{ state: 'online', times: 0, totalSec: 86400, longestSec: 86400 }], 86400), 'never offline in 24 h; online 100 % of the time');
});
