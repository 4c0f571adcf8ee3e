import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MissingRequirementError } from './requirements.js';

export const OPENSSL_BIN = '/usr/bin/openssl';

/** A CA's certificate and key, PEM files. */
export interface TestCa {
  certFile: string;
  keyFile: string;
}

/** A server certificate for 127.0.0.1 and localhost, the key it goes with, and the CA's certificate that clients trust. */
export interface TestServerCertificate {
  caFile: string;
  certFile: string;
  keyFile: string;
}

function openssl(...args: string[]): void {
  if (!existsSync(OPENSSL_BIN)) throw new MissingRequirementError(`${OPENSSL_BIN} is missing (makes the test servers' certificates): apt-get install -y openssl`);
  const res = spawnSync(OPENSSL_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (res.error || res.status !== 0) throw new Error(`openssl ${args[0]} failed: ${res.error?.message ?? res.stderr.toString()}`);
}

/** A fresh CA (EC P-256, two days) in `dir`, made with Debian's openssl. */
export function makeTestCa(dir: string, name: string): TestCa {
  const ca = { certFile: join(dir, `${name}-ca.crt`), keyFile: join(dir, `${name}-ca.key`) };
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=pallas test ${name} CA`,
    '-keyout', ca.keyFile, '-out', ca.certFile);
  chmodSync(ca.certFile, 0o644);
  return ca;
}

/**
 * A server certificate for 127.0.0.1 and localhost, signed by `ca` (a CA of `makeTestCa`, or
 * any PEM CA with its key: a manager's `<data-dir>/tls/ca.crt` and `ca.key`). Files are
 * `<dir>/<name>.crt` and `.key`, readable by all (servers started as root may drop to
 * another user: Mosquitto).
 */
export function issueTestServerCertificate(dir: string, name: string, ca: TestCa): TestServerCertificate {
  const file = (ext: string) => join(dir, `${name}.${ext}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('key'), '-out', file('csr'));
  writeFileSync(file('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('csr'), '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-CAserial', file('srl'), '-days', '2',
    '-extfile', file('ext'), '-out', file('crt'));
  for (const f of [file('key'), file('crt')]) chmodSync(f, 0o644);
  return { caFile: ca.certFile, certFile: file('crt'), keyFile: file('key') };
}
