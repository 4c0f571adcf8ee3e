import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * The X.509 library is loaded only when a certificate must be made (first start, or a server
 * certificate that no longer fits): it costs about a second of start-up on a small machine.
 */
let loaded: Promise<typeof X509> | undefined;
function x509Library(): Promise<typeof X509> {
  loaded ??= (async () => {
    // @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
    await import('reflect-metadata');
    const lib = await import('@peculiar/x509');
    lib.cryptoProvider.set(webcrypto as unknown as Parameters<typeof lib.cryptoProvider.set>[0]);
    return lib;
  })();
  return loaded;
}

/** What the HTTPS and MQTTS listeners serve, and the CA agents pin (null = not ours to hand out). */
export interface TlsMaterial {
  key: string;
  cert: string;
  ca: string | null;
  /** Where it came from, for the start banner and docs. */
  source: 'generated' | 'given';
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/**
 * The manager's TLS material. With a given certificate and key (tlsCert/tlsKey) those are
 * served as they are. Otherwise the manager is its own CA: `<dataDir>/tls/ca.key` + `ca.crt`
 * (EC P-256, 10 years) are created on first start and kept, since agents pin that CA; the
 * server certificate it issues is reused while it names everything this host answers to now and
 * has 30 days left, else issued afresh (a renamed host or a new address needs no manual step).
 */
export async function loadTls(opts: {
  dataDir: string;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  caFile?: string | undefined;
  extraNames?: string[] | undefined;
}): Promise<TlsMaterial> {
  if (opts.certFile && opts.keyFile) {
    const cert = readFileSync(opts.certFile, 'utf8');
    const key = readFileSync(opts.keyFile, 'utf8');
    new X509Certificate(cert); // fail at start, with the file's name, rather than on the first handshake
    createPrivateKey(key);
    return { cert, key, ca: opts.caFile ? readFileSync(opts.caFile, 'utf8') : null, source: 'given' };
  }
  const dir = join(opts.dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const names = serverNames(opts.extraNames ?? []);
  const reused = reusableServerCert(dir, names);
  if (reused) return { ...reused, source: 'generated' };
  const ca = await loadOrCreateCa(dir);
  const server = await issueServerCert(ca, names);
  writeFileSync(join(dir, 'server.crt'), server.cert, { mode: 0o644 });
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  chmodSync(join(dir, 'server.key'), 0o600); // the mode above applies only to a new file
  return { cert: `${server.cert}${ca.pem}`, key: server.key, ca: ca.pem, source: 'generated' };
}

/**
 * The server certificate of an earlier start, if it still fits: issued by the current CA,
 * valid for 30 more days at least, and naming every name and address this host has now.
 */
function reusableServerCert(dir: string, names: string[]): { cert: string; key: string; ca: string } | null {
  try {
    const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const certPem = readFileSync(join(dir, 'server.crt'), 'utf8');
    const key = readFileSync(join(dir, 'server.key'), 'utf8');
    const cert = new X509Certificate(certPem);
    if (!cert.checkIssued(new X509Certificate(caPem)) || !cert.verify(new X509Certificate(caPem).publicKey)) return null;
    if (Date.parse(cert.validTo) - Date.now() < 30 * DAY) return null;
    if (!names.every((n) => (isIP(n) ? cert.checkIP(n) : cert.checkHost(n)) !== undefined)) return null;
    if (!cert.checkPrivateKey(createPrivateKey(key))) return null;
    return { cert: `${certPem}${caPem}`, key, ca: caPem };
  } catch {
    return null;
  }
}

interface Ca { cert: X509.X509Certificate; pem: string; keys: CryptoKeyPair }

async function loadOrCreateCa(dir: string): Promise<Ca> {
  const x509 = await x509Library();
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const pem = readFileSync(certPath, 'utf8');
    const cert = new x509.X509Certificate(pem);
    const der = createPrivateKey(readFileSync(keyPath, 'utf8')).export({ type: 'pkcs8', format: 'der' });
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']);
    const publicKey = await cert.publicKey.export(EC, ['verify']);
    return { cert, pem, keys: { privateKey, publicKey } };
  }
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Pallas manager CA ${hostname()}, O=Pallas`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pem = cert.toString('pem') + '\n';
  writeFileSync(keyPath, await pemKey(keys.privateKey), { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, pem, { mode: 0o644 });
  return { cert, pem, keys };
}

async function issueServerCert(ca: Ca, names: string[]): Promise<{ cert: string; key: string }> {
  const x509 = await x509Library();
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? 'localhost'}, O=Pallas`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 397 * DAY),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? 'ip' as const : 'dns' as const, value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pemKey(keys.privateKey) };
}

/** This host's names and addresses, plus the configured extra ones, without duplicates. */
export function serverNames(extra: string[]): string[] {
  const names = [...extra.map((n) => n.trim()).filter(Boolean), hostname(), 'localhost', '127.0.0.1', '::1'];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal) names.push(a.address.replace(/%.*$/, ''));
  }
  return [...new Set(names)];
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

/** A positive 128-bit serial number (RFC 5280 wants positive and unique). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

/**
 * TLS 1.2 suites offered: forward-secret AEAD only (GCM, ChaCha20-Poly1305); no CBC, no RSA
 * key exchange. TLS 1.3's suites (all AEAD) come first. Used by the HTTPS and MQTTS listeners.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
