/**
 * The fuzzers' shared parts: a failing case is reported with its property, seed and path and
 * a command that replays only it; the text generators reach control characters, astral code
 * points and lone surrogates; the deep mutator reaches nested values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FUZZ_SEED, anyText, fuzz, mutatedDeep, pathsOf, withValueAt } from '@pallas/testkit';

describe('fuzz', () => {
  it('stops at the first bad case and says how to replay it', async () => {
    const seen: number[] = [];
    const error = await fuzz('demo', fc.integer(), async (n) => {
      seen.push(n);
      assert.ok(n <= 100, `too big: ${n}`);
    }, { numRuns: 500, file: 'x.test.ts' }).then(() => undefined, (e: Error) => e);
    assert.ok(error, 'the property failed');
    assert.match(error.message, new RegExp(`fuzz property "demo" failed after \\d+ case\\(s\\) \\(seed ${FUZZ_SEED}, path [0-9:]+\\)`));
    assert.match(error.message, new RegExp(`replay: PALLAS_FUZZ_SEED=${FUZZ_SEED} PALLAS_FUZZ_PATH='demo:[0-9:]+' node scripts/run-tests.mjs x.test.ts`));
    assert.match(error.message, /case: \[101\]/, 'shrunk to the smallest failing case');
    assert.match(error.message, /too big: 101/);
  });

  it('passes quietly when every case holds', async () => {
    await fuzz('fine', fc.integer(), async () => {}, { numRuns: 50, file: 'x.test.ts' });
  });
});

describe('generators', () => {
  it('anyText reaches control characters, CR/LF, astral code points and lone surrogates', () => {
    const samples = fc.sample(anyText(64), { numRuns: 2000, seed: 42 }).join('');
    for (const [what, re] of [
      ['NUL or another C0 control', /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/],
      ['CR', /\r/], ['LF', /\n/], ['C1 control', /[\u0080-\u009f]/],
      ['astral code point', /[\ud800-\udbff][\udc00-\udfff]/],
      ['lone surrogate', /(?:[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff])/],
      ['non-ASCII letter', /[\u00c0-\u024f\u0400-\u04ff\u4e00-\u9fff]/],
    ] as const) {
      assert.match(samples, re, `${what} generated`);
    }
  });

  it('mutatedDeep changes or removes values at every depth', () => {
    const valid = { a: 1, b: { c: [10, { d: 'x' }] } };
    assert.deepEqual(pathsOf(valid).map((p) => p.join('.')), ['a', 'b', 'b.c', 'b.c.0', 'b.c.1', 'b.c.1.d']);
    assert.deepEqual(withValueAt(valid, ['b', 'c', 1, 'd'], 'y'), { a: 1, b: { c: [10, { d: 'y' }] } });
    assert.deepEqual(withValueAt(valid, ['b', 'c', 0], undefined), { a: 1, b: { c: [{ d: 'x' }] } });
    assert.deepEqual(valid, { a: 1, b: { c: [10, { d: 'x' }] } }, 'the valid value is not changed');
    const mutants = fc.sample(mutatedDeep(valid, fc.constant('MUTANT')), { numRuns: 300, seed: 7 }).map((m) => JSON.stringify(m));
    assert.ok(mutants.some((m) => m.includes('{"d":"MUTANT"}')), 'a value three levels down changed');
    assert.ok(mutants.some((m) => m === '{"a":1,"b":{"c":[10,{}]}}'), 'a value three levels down removed');
  });
});
