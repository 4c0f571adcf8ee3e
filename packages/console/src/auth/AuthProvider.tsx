import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { Role, User } from '@pallas/protocol';
import { PallasApiError } from '@pallas/client';
import { api, setUnauthorizedHandler } from '../api/client.js';
import { clearSession, loadSession, mayHaveCookieSession, saveSession } from './session.js';

interface AuthContext {
  user: User | null;
  /** True while a new tab asks the manager whether the browser's cookie session is valid. */
  checking: boolean;
  /** Why the user was logged out, when it was not their choice (shown on the login page). */
  notice: string | null;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  /** Ends the session locally, with a reason to show (the manager already refused it). */
  expire(reason: string): void;
}

const Context = createContext<AuthContext | null>(null);

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may do what needs `minimum` (the same order the manager enforces). */
export function roleAtLeast(role: Role | undefined, minimum: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[minimum];
}

/**
 * The console's tabs tell each other of logins and logouts (same origin only): a tab on the
 * login page takes over a session another tab started, and a logout ends every tab's view of
 * it at once (the manager has already ended the session itself).
 */
const CHANNEL = 'pallas-session';
type TabMessage = { type: 'login' } | { type: 'logout' };

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(() => loadSession()?.user ?? null);
  // A tab without its own record asks the manager, if the browser holds a session cookie.
  const [checking, setChecking] = useState(() => user === null && mayHaveCookieSession());
  const [notice, setNotice] = useState<string | null>(null);
  const channel = useRef<BroadcastChannel | null>(null);

  const expire = useCallback((reason: string) => {
    clearSession();
    setUser(null);
    setNotice(reason);
  }, []);

  /** Asks the manager who the cookie session belongs to; a refusal leaves the tab logged out. */
  const adopt = useCallback(async () => {
    try {
      const me = await api.call('me');
      saveSession({ user: me });
      setNotice(null);
      setUser(me);
    } catch (err) {
      if (!(err instanceof PallasApiError)) setNotice('Could not reach the manager to check the session. Log in, or reload the page.');
    } finally {
      setChecking(false);
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => expire('Your session has ended. Log in again.'));
    return () => setUnauthorizedHandler(undefined);
  }, [expire]);

  useEffect(() => {
    if (checking) void adopt();
    // Only at start: later logins and logouts come from this tab or the channel.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    if (typeof BroadcastChannel !== 'function') return;
    const tabs = new BroadcastChannel(CHANNEL);
    channel.current = tabs;
    tabs.onmessage = (e: MessageEvent<TabMessage>) => {
      if (e.data?.type === 'logout') expire('You logged out in another tab.');
      // Someone logged in in another tab: the cookie is theirs now, in this tab too.
      else if (e.data?.type === 'login') void adopt();
    };
    return () => {
      channel.current = null;
      tabs.close();
    };
  }, [expire, adopt]);

  const login = useCallback(async (username: string, password: string) => {
    const res = await api.login(username, password);
    saveSession({ expiresAt: res.expiresAt, user: res.user });
    setNotice(null);
    setUser(res.user);
    channel.current?.postMessage({ type: 'login' } satisfies TabMessage);
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      clearSession();
      setUser(null);
      setNotice(null);
      channel.current?.postMessage({ type: 'logout' } satisfies TabMessage);
    }
  }, []);

  const value = useMemo(() => ({ user, checking, notice, login, logout, expire }), [user, checking, notice, login, logout, expire]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useAuth(): AuthContext {
  const context = useContext(Context);
  if (!context) throw new Error('useAuth outside AuthProvider');
  return context;
}

/** True when the logged-in user has at least `minimum`: decides which actions are shown. */
export function useCan(minimum: Role): boolean {
  return roleAtLeast(useAuth().user?.role, minimum);
}
