import { randomFillSync } from 'node:crypto';

/** Bytes drawn from the CSPRNG at a time: 128 secrets of 32 bytes. */
const POOL_BYTES = 4096;

const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * `n` random bytes as base64url, from a pool refilled by one `randomFillSync` call at a time.
 *
 * Why: `randomBytes(32)` is a call into OpenSSL with a job object of its own each time, ~6 µs
 * of CPU, and it was the largest single item an enrollment spends outside SQLite and the
 * HTTP stack (docs/benchmarks.md); from the pool it costs ~0.3 µs. The bytes are the same
 * CSPRNG's (Node buffers `randomUUID` the same way). Each draw is zeroed in the pool as it is
 * handed out, so a secret's bytes stay in memory only where its caller keeps them.
 */
export function randomBase64url(n: number): string {
  if (n > POOL_BYTES) {
    const big = Buffer.alloc(n);
    randomFillSync(big);
    return big.toString('base64url');
  }
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.toString('base64url', offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
