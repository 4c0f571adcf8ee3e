import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random bearer secret with a readable prefix (so a leaked one is easy to recognise). */
export function newSecret(prefix: string, bytes = 32): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}

/**
 * Secrets we generate carry 256 bits of entropy, so a plain SHA-256 is enough to store them:
 * a slow password hash buys nothing against brute force here and would cost every reconnect.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
