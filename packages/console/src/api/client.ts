import { PallasClient } from '@pallas/client';

/** Called when the manager says the session is no longer valid (set by the auth provider). */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: (() => void) | undefined): void {
  onUnauthorized = handler;
}

/**
 * The console's one client of the manager that serves it: same origin, and the cookie session
 * (the HttpOnly cookie is the browser's; state-changing calls carry the CSRF token from the
 * readable `pallas_csrf` cookie).
 */
export const api = new PallasClient({ server: '', cookies: true, onUnauthorized: () => onUnauthorized?.() });

/** A readable sentence for anything thrown, for the places that show errors. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
