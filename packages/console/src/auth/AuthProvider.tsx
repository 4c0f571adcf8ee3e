import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { Role, User } from '@pallas/protocol';
import { api, setUnauthorizedHandler } from '../api/client.js';
import { clearSession, loadSession, saveSession } from './session.js';

interface AuthContext {
  user: User | null;
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

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(() => loadSession()?.user ?? null);
  const [notice, setNotice] = useState<string | null>(null);

  const expire = useCallback((reason: string) => {
    clearSession();
    setUser(null);
    setNotice(reason);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => expire('Your session has ended. Log in again.'));
    return () => setUnauthorizedHandler(undefined);
  }, [expire]);

  const login = useCallback(async (username: string, password: string) => {
    const res = await api.login(username, password);
    saveSession({ expiresAt: res.expiresAt, user: res.user });
    setNotice(null);
    setUser(res.user);
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      clearSession();
      setUser(null);
      setNotice(null);
    }
  }, []);

  const value = useMemo(() => ({ user, notice, login, logout, expire }), [user, notice, login, logout, expire]);
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
