import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

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
 * server certificate is issued afresh by it on every start for the names this host answers
 * to now (a renamed host or a new address needs no manual step).
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
  const ca = await loadOrCreateCa(dir);
  const names = serverNames(opts.extraNames ?? []);
  const server = await issueServerCert(ca, names);
  writeFileSync(join(dir, 'server.crt'), server.cert, { mode: 0o644 });
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  return { cert: `${server.cert}${ca.pem}`, key: server.key, ca: ca.pem, source: 'generated' };
}

interface Ca { cert: x509.X509Certificate; pem: string; keys: CryptoKeyPair }

async function loadOrCreateCa(dir: string): Promise<Ca> {
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
  writeFileSync(certPath, pem, { mode: 0o644 });
  return { cert, pem, keys };
}

async function issueServerCert(ca: Ca, names: string[]): Promise<{ cert: string; key: string }> {
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
