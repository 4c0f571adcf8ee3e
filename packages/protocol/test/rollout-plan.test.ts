import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WAVES, planWaves, sizeOf } from '../src/rollout-plan.js';

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

describe('the wave planner', () => {
  it('takes listed counts and percentages in order, then repeats the last size', () => {
    assert.deepEqual(planWaves(200, { sizes: [1, '10%', '50%'] }), [1, 20, 100, 79]);
    assert.deepEqual(planWaves(20, { sizes: [4, 4, 12] }), [4, 4, 12]);
    assert.deepEqual(planWaves(10, { sizes: [3] }), [3, 3, 3, 1]);
    assert.deepEqual(planWaves(12, { sizes: [1, '25%'] }), [1, 3, 3, 3, 2]);
  });

  it('stops when the devices run out, and never makes an empty wave', () => {
    assert.deepEqual(planWaves(3, { sizes: [5, 10] }), [3]);
    assert.deepEqual(planWaves(0, { sizes: [5] }), []);
    assert.deepEqual(planWaves(1, { sizes: ['1%'] }), [1]);
  });

  it('ramps exponentially up to the cap', () => {
    assert.deepEqual(planWaves(20, { ramp: { first: 1, factor: 2 } }), [1, 2, 4, 8, 5]);
    assert.deepEqual(planWaves(2000, { ramp: { first: 10, factor: 3, cap: 500 } }), [10, 30, 90, 270, 500, 500, 500, 100]);
    // A factor below 2 still grows (rounded up): 1, 2, 3, 5, 8 …
    assert.deepEqual(planWaves(19, { ramp: { first: 1, factor: 1.5 } }), [1, 2, 3, 5, 8]);
    assert.deepEqual(planWaves(5, { ramp: { first: 2, factor: 1 } }), [2, 2, 1]);
  });

  it('covers every device exactly once, in at most MAX_WAVES waves', () => {
    for (const total of [1, 7, 99, 1000, 12_345]) {
      for (const spec of [{ sizes: [1, '5%'] }, { sizes: [1] }, { ramp: { first: 1, factor: 1.1, cap: 3 } }] as const) {
        const waves = planWaves(total, spec as never);
        assert.equal(sum(waves), total, `${total} ${JSON.stringify(spec)}`);
        assert.ok(waves.length <= MAX_WAVES && waves.every((w) => w >= 1));
      }
    }
  });

  it('refuses sizes that are not positive counts or percentages in (0, 100]', () => {
    for (const bad of [0, -1, 1.5, '0%', '150%', 'ten', '10']) assert.throws(() => sizeOf(bad as never, 10), RangeError, String(bad));
    assert.throws(() => planWaves(10, { sizes: [] }), RangeError);
    assert.equal(sizeOf('12.5%', 100), 13);
  });
});
