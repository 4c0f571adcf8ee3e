import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Encrypted secrets in the agent's config file: AES-256-GCM with a random 96-bit IV, written
 * as `enc:v1:<iv>:<tag>:<ciphertext>` (base64url). The version lets a later format (another
 * cipher, a key id) sit beside this one; the prefix is bound into the tag as associated data,
 * so a value cannot be relabelled to another version unnoticed.
 */
export const SECRET_PREFIX = 'enc:v1:';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD = Buffer.from('pallas-secret:v1');

/** A secret that cannot be decrypted: malformed, tampered with, or encrypted with another key. */
export class SecretError extends Error {
  override readonly name = 'SecretError';
}

function assertKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new SecretError(`secret key must be ${KEY_BYTES} bytes (256 bits), got ${key.length}`);
}

export function isEncryptedSecret(value: string): boolean {
  return value.startsWith('enc:');
}

export function encryptSecret(plain: string, key: Buffer): string {
  assertKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `${SECRET_PREFIX}${iv.toString('base64url')}:${tag.toString('base64url')}:${ciphertext.toString('base64url')}`;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function part(value: string, name: string, bytes?: number): Buffer {
  if (!B64URL.test(value)) throw new SecretError(`encrypted secret: ${name} is not base64url`);
  const buf = Buffer.from(value, 'base64url');
  if (bytes !== undefined && buf.length !== bytes) throw new SecretError(`encrypted secret: ${name} must be ${bytes} bytes, got ${buf.length}`);
  return buf;
}

export function decryptSecret(value: string, key: Buffer): string {
  assertKey(key);
  if (!value.startsWith('enc:')) throw new SecretError('encrypted secret must start with "enc:v1:"');
  if (!value.startsWith(SECRET_PREFIX)) throw new SecretError(`encrypted secret has an unknown version "${value.split(':')[1] ?? ''}" (this agent reads v1)`);
  const fields = value.slice(SECRET_PREFIX.length).split(':');
  if (fields.length !== 3) throw new SecretError('encrypted secret must be enc:v1:<iv>:<tag>:<ciphertext>');
  const iv = part(fields[0]!, 'iv', IV_BYTES);
  const tag = part(fields[1]!, 'tag', TAG_BYTES);
  const ciphertext = part(fields[2]!, 'ciphertext');
  const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(AAD);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    // GCM cannot tell a wrong key from a modified value: both fail the tag.
    throw new SecretError('encrypted secret does not decrypt: wrong key, or the value was modified');
  }
}
