import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ArtifactManifest, SigningKey } from '@pallas/protocol';
import { canonicalJson } from '@pallas/protocol';

const SIGNING_KEY_FILE = 'signing-key.pem';
const URL_SECRET_FILE = 'download-url.key';

/** Reads a 0600 secret file, or creates it with `make()` on first start. */
function loadOrCreate(path: string, make: () => string): string {
  if (!existsSync(path)) {
    // wx: two managers starting on one data dir must not overwrite each other's key.
    try {
      writeFileSync(path, make(), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(path, 0o600);
  return readFileSync(path, 'utf8');
}

/**
 * The manager's Ed25519 manifest-signing key. Generated on first start into the data dir
 * (PKCS#8 PEM, mode 0600); the public half is served at `GET /signing-key` and handed to
 * devices at enrollment, which pin it. Losing the file means devices must re-enroll to learn
 * a new key, so it belongs in the data dir's backup.
 */
export class ManifestSigner {
  readonly #private: KeyObject;
  readonly publicKey: SigningKey;

  constructor(dataDir: string) {
    const pem = loadOrCreate(join(dataDir, SIGNING_KEY_FILE), () =>
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    );
    this.#private = createPrivateKey(pem);
    const pub = createPublicKey(this.#private);
    const raw = pub.export({ format: 'der', type: 'spki' });
    this.publicKey = {
      algorithm: 'ed25519',
      keyId: createHash('sha256').update(raw).digest('hex').slice(0, 16),
      publicKeyPem: pub.export({ format: 'pem', type: 'spki' }).toString(),
    };
  }

  /** base64 Ed25519 signature over the manifest's canonical JSON. */
  sign(manifest: ArtifactManifest): string {
    return sign(null, Buffer.from(canonicalJson(manifest)), this.#private).toString('base64');
  }
}

/** What an agent does with a manifest before it uses a file (here for tests and docs). */
export function verifyManifest(manifest: ArtifactManifest, signatureB64: string, publicKeyPem: string): boolean {
  return verify(null, Buffer.from(canonicalJson(manifest)), createPublicKey(publicKeyPem), Buffer.from(signatureB64, 'base64'));
}

/** Why a signed download URL was refused; each becomes a 403 with its own message. */
export type UrlRefusal = 'expired' | 'bad_signature' | 'malformed';

/**
 * Signs and checks device download URLs: HMAC-SHA256 with a secret of the manager (a file in
 * the data dir, 0600) over `artifactId \n deviceId \n expiry`. The device id in the URL is
 * what the signature binds, so a URL handed to one device is useless to another.
 */
export class DownloadUrlSigner {
  readonly #secret: Buffer;

  constructor(dataDir: string) {
    this.#secret = Buffer.from(loadOrCreate(join(dataDir, URL_SECRET_FILE), () => randomBytes(32).toString('base64url')).trim(), 'base64url');
  }

  /**
   * Names the secret without revealing it: managers sharing a database compare theirs, since
   * a URL signed by one must pass on all (docs/scale-out.md).
   */
  get fingerprint(): string {
    return createHmac('sha256', this.#secret).update('pallas url-signing key fingerprint').digest('hex').slice(0, 16);
  }

  #mac(artifactId: string, deviceId: string, exp: number): Buffer {
    return createHmac('sha256', this.#secret).update(`${artifactId}\n${deviceId}\n${exp}`).digest();
  }

  sign(artifactId: string, deviceId: string, exp: number): string {
    return this.#mac(artifactId, deviceId, exp).toString('base64url');
  }

  /** undefined when the URL is good; otherwise why not. The signature is checked before the expiry. */
  check(artifactId: string, deviceId: string | undefined, exp: string | undefined, sig: string | undefined, nowSec: number): UrlRefusal | undefined {
    if (!deviceId || !exp || !sig || !/^\d{1,12}$/.test(exp)) return 'malformed';
    const presented = Buffer.from(sig, 'base64url');
    const expected = this.#mac(artifactId, deviceId, Number(exp));
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return 'bad_signature';
    if (Number(exp) <= nowSec) return 'expired';
    return undefined;
  }
}
