import type { User } from '@pallas/protocol';

/**
 * Where the console keeps its session. The secret is an HttpOnly, SameSite=Strict cookie set
 * by the manager at login: page scripts (and so any injected script) cannot read it, and the
 * browser sends it with every same-origin request. What this module keeps in sessionStorage
 * is only who is logged in and until when, to draw the page; the manager decides.
 * State-changing requests carry the session's CSRF token, which the manager also puts in the
 * readable `pallas_csrf` cookie, in `x-csrf-token` (the client does that: api/client.ts).
 */
export interface Session {
  expiresAt: string;
  user: User;
}

const KEY = 'pallas.session';

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    return Date.parse(session.expiresAt) > Date.now() ? session : null;
  } catch {
    return null; // storage disabled or garbage: start logged out
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify({ expiresAt: session.expiresAt, user: session.user }));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
