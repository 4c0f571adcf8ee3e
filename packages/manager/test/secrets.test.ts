/** Secrets drawn from the random pool (security/random-pool.ts) and their hashes. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { randomBase64url } from '../src/security/random-pool.js';
import { hashSecret, newSecret, sameHash } from '../src/security/secrets.js';

describe('secrets', () => {
  it('draws distinct 256-bit secrets across several refills of the pool', () => {
    const seen = new Set<string>();
    // 1,000 secrets of 32 bytes: the 4 KiB pool is refilled seven times on the way.
    for (let i = 0; i < 1000; i++) {
      const s = newSecret('pds');
      assert.match(s, /^pds_[A-Za-z0-9_-]{43}$/);
      seen.add(s);
    }
    assert.equal(seen.size, 1000);
  });

  it('draws sizes that do not divide the pool, and sizes larger than the pool', () => {
    for (const n of [1, 18, 33, 4095, 4096, 5000]) assert.equal(Buffer.from(randomBase64url(n), 'base64url').length, n);
  });

  it('hashes with SHA-256 in hex, as stored hashes were made', () => {
    assert.equal(hashSecret('pds_x'), createHash('sha256').update('pds_x').digest('hex'));
    assert.equal(sameHash(hashSecret('a'), hashSecret('a')), true);
    assert.equal(sameHash(hashSecret('a'), hashSecret('b')), false);
  });
});
