import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffCeiling, fullJitterDelay, sleep } from '../src/util/backoff.js';

describe('backoff', () => {
  it('ceiling doubles from base and stops at cap', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeiling(n, 1000, 60_000)), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    assert.equal(backoffCeiling(5000, 1000, 60_000), 60_000); // 2^5000 = Infinity is harmless
  });

  it('full jitter stays within [0, ceiling)', () => {
    for (let n = 0; n < 20; n++) {
      for (let i = 0; i < 200; i++) {
        const d = fullJitterDelay(n, 100, 5000);
        assert.ok(d >= 0 && d < backoffCeiling(n, 100, 5000), `attempt ${n}: ${d}`);
      }
    }
    assert.equal(fullJitterDelay(3, 100, 5000, () => 0), 0);
    assert.equal(fullJitterDelay(3, 100, 5000, () => 0.999999), 799);
  });

  it('delays grow with attempts and spread out (jitter)', () => {
    const mean = (attempt: number): number => {
      let sum = 0;
      for (let i = 0; i < 2000; i++) sum += fullJitterDelay(attempt, 100, 100_000);
      return sum / 2000;
    };
    const m0 = mean(0);
    const m4 = mean(4);
    assert.ok(m4 > m0 * 8, `mean grows (${m0} → ${m4})`); // expected ≈ 50 → 800
    const samples = new Set(Array.from({ length: 50 }, () => fullJitterDelay(6, 100, 100_000)));
    assert.ok(samples.size > 40, 'delays are not a fixed period');
  });

  it('Backoff counts attempts and resets', () => {
    const b = new Backoff({ baseMs: 10, capMs: 1000, random: () => 0.5 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [5, 10, 20, 40]);
    assert.equal(b.attempt, 4);
    b.reset();
    assert.equal(b.next(), 5);
    assert.throws(() => new Backoff({ baseMs: 0 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: 10, capMs: 5 }), RangeError);
  });

  it('sleep can be aborted', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(p, /stop/);
    assert.ok(Date.now() - started < 5000, 'aborted, not slept out (10 s)');
  });
});
