import type { User } from '@pallas/protocol';

/**
 * Where the console keeps its session. The secret is an HttpOnly, SameSite=Strict cookie set
 * by the manager at login: page scripts (and so any injected script) cannot read it, and the
 * browser sends it with every same-origin request, from every tab. What this module keeps in
 * sessionStorage is only who is logged in and until when, to draw the page; the manager decides.
 * State-changing requests carry the session's CSRF token, which the manager also puts in the
 * readable `pallas_csrf` cookie, in `x-csrf-token` (the client does that: api/client.ts).
 *
 * sessionStorage belongs to one tab: a second tab, or a device opened with ctrl-click, starts
 * without it. It then asks the manager who is logged in (`GET /auth/me`, which the cookie
 * answers) when there is a `pallas_csrf` cookie, the readable half of a session that the
 * manager gives the same lifetime as the session cookie: no cookie, no question (and no 401).
 */
export interface Session {
  /** When the manager ends the session; unknown for a session a tab took over from the cookie. */
  expiresAt?: string;
  user: User;
}

const KEY = 'pallas.session';
const CSRF_COOKIE = 'pallas_csrf';

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    return session.expiresAt === undefined || Date.parse(session.expiresAt) > Date.now() ? session : null;
  } catch {
    return null; // storage disabled or garbage: start logged out
  }
}

export function saveSession(session: Session): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(session.expiresAt === undefined ? { user: session.user } : { expiresAt: session.expiresAt, user: session.user }));
  } catch {
    /* storage disabled: the page works, a reload asks the manager again */
  }
}

export function clearSession(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled */
  }
}

/** Whether the browser holds a cookie session the manager may still honour (see above). */
export function mayHaveCookieSession(): boolean {
  return document.cookie.split(';').some((part) => part.trim().startsWith(`${CSRF_COOKIE}=`) && part.trim().length > CSRF_COOKIE.length + 1);
}
