/** Unit tests of the broker's limits: token buckets, the frame-size guard, clone detection. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { guardFrames } from '../src/broker/frame-guard.js';
import { RateLimiter } from '../src/broker/rate-limit.js';
import { CloneDetector } from '../src/services/devices/clone-detector.js';

describe('RateLimiter', () => {
  it('allows a burst, then the rate, per key; 0 is unlimited', () => {
    let now = 0;
    const r = new RateLimiter(2, 5, 100, () => now);
    assert.deepEqual(Array.from({ length: 6 }, () => r.take('a')), [true, true, true, true, true, false]);
    assert.equal(r.take('b'), true, 'keys are independent');
    now = 1000;
    assert.deepEqual([r.take('a'), r.take('a'), r.take('a')], [true, true, false]);
    const off = new RateLimiter(0, 0);
    assert.ok(Array.from({ length: 1000 }, () => off.take('x')).every(Boolean));
  });

  it('keeps at most maxKeys keys', () => {
    let now = 0;
    const r = new RateLimiter(1, 1, 50, () => now);
    for (let i = 0; i < 1000; i++) {
      now += 1;
      r.take(`k${i}`);
    }
    assert.ok(r.size <= 50, `size ${r.size}`);
  });
});

describe('guardFrames', () => {
  function run(chunks: Buffer[], max = 100): string[] {
    const s = new PassThrough();
    const violations: string[] = [];
    guardFrames(s, max, (why) => violations.push(why));
    s.on('readable', () => { while (s.read() !== null) { /* drain like Aedes */ } });
    for (const c of chunks) s.write(c);
    return violations;
  }
  const flush = () => new Promise((r) => setImmediate(r));

  it('lets packets within the limit through, across chunk boundaries', async () => {
    const v = run([Buffer.from([0x30, 10]), Buffer.alloc(10), Buffer.from([0xc0, 0x00, 0x30]), Buffer.from([0x05, 1, 2, 3, 4, 5])]);
    await flush();
    assert.deepEqual(v, []);
  });

  it('stops a packet announcing more than the limit, and a malformed length', async () => {
    const big = run([Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])]);
    const bad = run([Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    await flush();
    assert.equal(big.length, 1);
    assert.match(big[0]!, /announced/);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /malformed/);
  });
});

describe('CloneDetector', () => {
  it('flags a takeover from another address at once, from the same one on the third in the window', () => {
    let now = 0;
    const flagged: string[] = [];
    const d = new CloneDetector({ onSuspected: (id, why) => flagged.push(`${id}: ${why}`), now: () => now });
    d.takeover('a', '10.0.0.1', '10.0.0.2');
    assert.equal(flagged.length, 1);
    d.takeover('b', '10.0.0.1', '10.0.0.1');
    now += 700_000; // outside the 10 min window: the first one is forgotten
    d.takeover('b', '10.0.0.1', '10.0.0.1');
    d.takeover('b', '10.0.0.1', '10.0.0.1');
    assert.equal(flagged.length, 1);
    d.takeover('b', '10.0.0.1', '10.0.0.1');
    assert.equal(flagged.length, 2);
    assert.match(flagged[1]!, /^b: 3 connections/);
  });
});
