import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../src/duration.js';

test('parseDuration accepts units, combinations and bare seconds', () => {
  assert.equal(parseDuration('24h'), 86400);
  assert.equal(parseDuration('30m'), 1800);
  assert.equal(parseDuration('3600'), 3600);
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('7d'), 604800);
  assert.equal(parseDuration('2w'), 1209600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration(' 1D '), 86400);
});

test('parseDuration rejects nonsense', () => {
  for (const bad of ['', 'h', '3x', '-5', '0', '0h', '1.5h', '30m1h', '1h1h', '24 h', '1e3', 'abc10m']) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});
