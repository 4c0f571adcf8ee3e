import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The console's session: HttpOnly, so page scripts (and an XSS) can never read it. */
export const SESSION_COOKIE = 'pallas_session';
/** Readable by the console's script, which echoes it in `x-csrf-token`. */
export const CSRF_COOKIE = 'pallas_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** Parses a Cookie header (RFC 6265 pairs); a malformed pair is skipped, never an error. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] ??= decodeURIComponent(value);
    } catch {
      /* bad escape: ignore this cookie */
    }
  }
  return out;
}

/**
 * The CSRF token of a session is derived from the session secret, so it needs no storage and
 * a cookie planted by a sibling site (the weakness of a plain double-submit cookie) cannot
 * match it. It reveals nothing about the session secret (one-way hash).
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`pallas-csrf:${sessionToken}`).digest('base64url');
}

export function csrfMatches(sessionToken: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(csrfTokenFor(sessionToken));
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

function serialize(name: string, value: string, opts: { httpOnly: boolean; secure: boolean; maxAgeSec: number }): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    'Path=/',
    `Max-Age=${Math.max(0, Math.floor(opts.maxAgeSec))}`,
    'SameSite=Strict',
    ...(opts.httpOnly ? ['HttpOnly'] : []),
    ...(opts.secure ? ['Secure'] : []),
  ].join('; ');
}

/** Sets the session and CSRF cookies; `Secure` whenever the request came over HTTPS. */
export function setSessionCookies(req: FastifyRequest, reply: FastifyReply, token: string, expiresAt: string): string {
  const secure = req.protocol === 'https';
  const maxAgeSec = (Date.parse(expiresAt) - Date.now()) / 1000;
  const csrf = csrfTokenFor(token);
  void reply.header('set-cookie', [
    serialize(SESSION_COOKIE, token, { httpOnly: true, secure, maxAgeSec }),
    serialize(CSRF_COOKIE, csrf, { httpOnly: false, secure, maxAgeSec }),
  ]);
  return csrf;
}

export function clearSessionCookies(req: FastifyRequest, reply: FastifyReply): void {
  const secure = req.protocol === 'https';
  void reply.header('set-cookie', [
    serialize(SESSION_COOKIE, '', { httpOnly: true, secure, maxAgeSec: 0 }),
    serialize(CSRF_COOKIE, '', { httpOnly: false, secure, maxAgeSec: 0 }),
  ]);
}
