/** MQTT filter matching of the external broker adapter (routes one connection's messages to handlers). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedFilter, topicMatches } from '../src/broker/external/topic-match.js';

describe('topicMatches', () => {
  it('matches + as one level and # as the rest', () => {
    assert.equal(topicMatches('pallas/v1/d/+/status', 'pallas/v1/d/abc/status'), true);
    assert.equal(topicMatches('pallas/v1/d/+/status', 'pallas/v1/d/abc/status/x'), false);
    assert.equal(topicMatches('pallas/v1/d/+/task/result', 'pallas/v1/d/abc/task/progress'), false);
    assert.equal(topicMatches('pallas/v1/d/abc/cmd/#', 'pallas/v1/d/abc/cmd/task'), true);
    assert.equal(topicMatches('pallas/v1/d/abc/cmd/#', 'pallas/v1/d/abc/cmd'), true, '# also matches its parent level');
    assert.equal(topicMatches('pallas/v1/d/abc/cmd/#', 'pallas/v1/d/abd/cmd/task'), false);
    assert.equal(topicMatches('a/b', 'a'), false);
  });

  it('never matches $ topics with a leading wildcard', () => {
    assert.equal(topicMatches('#', '$SYS/broker/version'), false);
    assert.equal(topicMatches('+/broker/version', '$SYS/broker/version'), false);
    assert.equal(topicMatches('$CONTROL/dynamic-security/v1/response', '$CONTROL/dynamic-security/v1/response'), true);
  });
});

describe('sharedFilter', () => {
  it('prefixes the group, and refuses a group that would change the filter', () => {
    assert.equal(sharedFilter('pallas', 'pallas/v1/d/+/status'), '$share/pallas/pallas/v1/d/+/status');
    for (const bad of ['', 'a/b', '+', '#']) assert.throws(() => sharedFilter(bad, 'x'), /invalid shared-subscription group/);
  });
});
