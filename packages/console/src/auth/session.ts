import type { User } from '@pallas/protocol';

/**
 * Where the console keeps its session. Everything that knows *how* the session is held is in
 * this module: today a bearer token in sessionStorage (gone when the tab closes, never shared
 * between tabs); the security work moves it to an HttpOnly cookie, which only changes this
 * file (authHeaders() then returns nothing and the browser sends the cookie).
 */
export interface Session {
  token: string;
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
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

/** Headers that authenticate a request with the current session (none when logged out). */
export function authHeaders(): Record<string, string> {
  const session = loadSession();
  return session ? { authorization: `Bearer ${session.token}` } : {};
}
