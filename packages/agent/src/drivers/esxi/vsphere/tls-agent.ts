import type { RequestOptions } from 'node:http';
import { Agent, type AgentOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** How the host's certificate is checked. Exactly one of the three; `thumbprint` wins over `ca`. */
export interface CertificateTrust {
  /** SHA-256 fingerprint of the host's certificate, hex with or without colons, any case. */
  thumbprint?: string;
  /** PEM of the CA (or of the self-signed certificate itself) that signs the host's certificate. */
  ca?: string;
  /** No verification at all: explicit opt-in, for labs only. */
  insecure?: boolean;
}

export function normalizeThumbprint(thumbprint: string): string {
  const hex = thumbprint.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new Error('thumbprint must be a SHA-256 fingerprint: 64 hex digits, colons allowed');
  }
  return hex.match(/../g)!.join(':');
}

/**
 * A keep-alive HTTPS agent that checks the host's certificate as `trust` says.
 *
 * A pinned thumbprint cannot go through Node's `checkServerIdentity`: Node calls it only once the
 * chain has verified, which a self-signed host certificate never does. So the agent opens each
 * TLS connection itself, compares the peer's SHA-256 fingerprint once the handshake is done, and
 * only then hands the socket to the HTTP layer: no byte of a request (a password) reaches a host
 * whose certificate does not match.
 */
export function createHostAgent(trust: CertificateTrust, options: AgentOptions = {}): Agent {
  const base: AgentOptions = { keepAlive: true, maxSockets: 4, ...options };
  if (trust.thumbprint !== undefined) {
    const expected = normalizeThumbprint(trust.thumbprint);
    return new PinnedAgent({ ...base, rejectUnauthorized: false }, expected);
  }
  if (trust.ca !== undefined) return new Agent({ ...base, ca: trust.ca, rejectUnauthorized: true });
  if (trust.insecure === true) return new Agent({ ...base, rejectUnauthorized: false });
  // The default: the system's CAs (a host with a certificate from a public or enterprise CA).
  return new Agent({ ...base, rejectUnauthorized: true });
}

export class CertificateMismatchError extends Error {
  override readonly name = 'CertificateMismatchError';
  readonly code = 'ERR_PALLAS_THUMBPRINT';
}

class PinnedAgent extends Agent {
  readonly #expected: string;

  constructor(options: AgentOptions, expected: string) {
    super(options);
    this.#expected = expected;
  }

  // The callback form of createConnection (supported by http.Agent): the socket is handed over
  // only after the fingerprint check.
  override createConnection(options: RequestOptions, callback?: (err: Error | null, socket: Duplex) => void): Duplex | undefined {
    const socket: TLSSocket = connect({ ...(options as ConnectionOptions), rejectUnauthorized: false });
    const onError = (err: Error): void => {
      socket.removeListener('secureConnect', onSecure);
      callback?.(err, socket);
    };
    const onSecure = (): void => {
      socket.removeListener('error', onError);
      const actual = socket.getPeerCertificate().fingerprint256;
      if (actual !== this.#expected) {
        socket.destroy();
        callback?.(new CertificateMismatchError(`host certificate SHA-256 fingerprint ${actual ?? '(none)'} does not match the pinned thumbprint ${this.#expected}`), socket);
        return;
      }
      callback?.(null, socket);
    };
    socket.once('error', onError);
    socket.once('secureConnect', onSecure);
    return undefined;
  }
}
