import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLimiter } from '../src/limiter.js';

describe('limiter', () => {
  it('runs at most `limit` calls at once, in order, and goes on after a call that failed', async () => {
    const limit = createLimiter(2);
    let active = 0;
    let max = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) =>
        limit(async () => {
          max = Math.max(max, ++active);
          await new Promise((r) => setTimeout(r, 10));
          order.push(i);
          active--;
        }),
      ),
    );
    assert.equal(max, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    assert.throws(() => createLimiter(0), RangeError);
    // A rejected call gives its place back.
    const one = createLimiter(1);
    await assert.rejects(one(async () => { throw new Error('boom'); }), /boom/);
    assert.equal(await one(async () => 'next'), 'next');
  });
});
