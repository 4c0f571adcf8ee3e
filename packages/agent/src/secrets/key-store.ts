import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { SecretError } from './secret-box.js';

/**
 * Where the key that encrypts config secrets comes from: `PALLAS_SECRET_KEY` (base64, for
 * services that inject secrets through the environment) or a key file (base64 on one line,
 * mode 0600), kept apart from the config file so that a copy of the config alone is useless.
 */
export type KeySource = { kind: 'env'; value: string } | { kind: 'file'; path: string };

export const SECRET_KEY_FILE_NAME = 'secret.key';

function parseKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new SecretError(`${where}: not base64`);
  const key = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
  if (key.length !== 32) throw new SecretError(`${where}: the key must be 32 bytes (256 bits) in base64, got ${key.length} bytes`);
  return key;
}

function describe(source: KeySource): string {
  return source.kind === 'env' ? 'PALLAS_SECRET_KEY' : `secret key file ${source.path}`;
}

/** Reads the key; a missing key file is an error naming the file. */
export async function readKey(source: KeySource): Promise<Buffer> {
  if (source.kind === 'env') return parseKey(source.value, describe(source));
  let text: string;
  try {
    text = await readFile(source.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SecretError(`${describe(source)} does not exist (create it with pallas-agent encrypt-secret, or set PALLAS_SECRET_KEY)`);
    throw new SecretError(`cannot read ${describe(source)}: ${(err as Error).message}`);
  }
  return parseKey(text, describe(source));
}

/** Reads the key, creating a key file (mode 0600, new random key) when it does not exist. */
export async function readOrCreateKey(source: KeySource): Promise<{ key: Buffer; created: boolean }> {
  if (source.kind === 'file') {
    const exists = await stat(source.path).then(() => true, () => false);
    if (!exists) {
      const key = randomBytes(32);
      await mkdir(dirname(source.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(source.path, `${key.toString('base64')}\n`, 0o600);
      return { key, created: true };
    }
  }
  return { key: await readKey(source), created: false };
}
