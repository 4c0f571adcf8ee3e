import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PallasApiError, PallasNetworkError } from '@pallas/client';
import { CliError, describeError, NOT_LOGGED_IN, UsageError, validationInWords } from '../src/errors.js';

test('401 from the API tells the operator to log in', () => {
  assert.deepEqual(describeError(new PallasApiError(401, 'unauthorized', 'invalid token')), { message: NOT_LOGGED_IN, exitCode: 1, code: 'unauthorized' });
});

test("other API errors show the server's message on one line", () => {
  assert.deepEqual(describeError(new PallasApiError(403, 'forbidden', 'admin role\nrequired')), { message: 'admin role required', exitCode: 1, code: 'forbidden' });
  assert.deepEqual(describeError(new PallasApiError(404, 'not_found', 'device not found')), { message: 'device not found', exitCode: 1, code: 'not_found' });
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
  assert.deepEqual(describeError(new UsageError('missing --yes')), { message: 'missing --yes', exitCode: 2, code: 'usage' });
  assert.deepEqual(describeError(new CliError('aborted')), { message: 'aborted', exitCode: 1, code: 'error' });
  const bug = describeError(new TypeError('x is undefined'));
  assert.equal(bug.message, 'unexpected error: x is undefined');
  assert.doesNotMatch(bug.message, /at /);
});

test('a missing or unreadable local file is said in words', () => {
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, stat '/tmp/nope.ova'"), { code: 'ENOENT', path: '/tmp/nope.ova' });
  assert.deepEqual(describeError(enoent), { message: 'no such file: /tmp/nope.ova', exitCode: 1, code: 'file_error' });
  const dir = Object.assign(new Error('EISDIR'), { code: 'EISDIR', path: '/tmp' });
  assert.equal(describeError(dir).message, '/tmp is a directory, not a file');
});

test("the manager's validator wording becomes a sentence", () => {
  assert.equal(validationInWords('body.password: must not have fewer than 12 characters'), 'the password needs at least 12 characters');
  assert.equal(validationInWords('body.vcpus: must be >= 1'), 'the vcpus must be at least 1');
  assert.equal(validationInWords('querystring.timeoutSec: must be <= 2592000'), 'the timeout sec must be at most 2592000');
  assert.equal(validationInWords('body.name: must not have more than 80 characters'), 'the name can have at most 80 characters');
  assert.equal(validationInWords('body: must have required properties username, role'), 'it needs username and role');
  assert.equal(validationInWords('body.colour: is not an allowed property'), 'the colour is not an option here'.replace('the ', ''));
  assert.equal(validationInWords('body: is not an allowed property (colour)'), 'colour is not an option here');
  assert.equal(validationInWords('artifact art_1 does not exist'), 'artifact art_1 does not exist', 'anything else unchanged');
  assert.equal(describeError(new PallasApiError(400, 'invalid_request', 'body.password: must not have fewer than 12 characters')).message, 'the password needs at least 12 characters');
});
