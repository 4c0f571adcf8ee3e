import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PallasApiError, PallasNetworkError } from '@pallas/client';
import { CliError, describeError, NOT_LOGGED_IN, UsageError } from '../src/errors.js';

test('401 from the API tells the operator to log in', () => {
  assert.deepEqual(describeError(new PallasApiError(401, 'unauthorized', 'invalid token')), { message: NOT_LOGGED_IN, exitCode: 1 });
});

test("other API errors show the server's message on one line", () => {
  assert.deepEqual(describeError(new PallasApiError(403, 'forbidden', 'admin role\nrequired')), { message: 'admin role required', exitCode: 1 });
  assert.deepEqual(describeError(new PallasApiError(404, 'not_found', 'device not found')), { message: 'device not found', exitCode: 1 });
});

test('network errors name the server and the reason', () => {
  const cause = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  assert.equal(describeError(new PallasNetworkError('http://m:9', cause)).message, 'could not reach the Pallas manager at http://m:9 (ECONNREFUSED)');
  const agg = new TypeError('fetch failed', { cause: new AggregateError([Object.assign(new Error('x'), { code: 'EHOSTUNREACH' })]) });
  assert.match(describeError(new PallasNetworkError('http://m:9', agg)).message, /\(EHOSTUNREACH\)$/);
  const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
  assert.match(describeError(new PallasNetworkError('http://m:9', timeout)).message, /\(timed out\)$/);
});

test('usage errors exit 2, CLI errors exit with their code, bugs never show a stack', () => {
  assert.deepEqual(describeError(new UsageError('missing --yes')), { message: 'missing --yes', exitCode: 2 });
  assert.deepEqual(describeError(new CliError('aborted')), { message: 'aborted', exitCode: 1 });
  const bug = describeError(new TypeError('x is undefined'));
  assert.equal(bug.message, 'unexpected error: x is undefined');
  assert.doesNotMatch(bug.message, /at /);
});
