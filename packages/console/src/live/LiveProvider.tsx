import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { PallasApiError, type LiveMessage, type StreamState } from '@pallas/client';
import { api } from '../api/client.js';

/** What a view hears: a live event, or `reset` (events were lost: reload what is shown). */
export type { LiveMessage };
type Listener = (message: LiveMessage) => void;

interface LiveContext {
  state: StreamState;
  subscribe(listener: Listener): () => void;
}

const Context = createContext<LiveContext | null>(null);

/** One event stream for the whole console while someone is logged in; views subscribe to it. */
export function LiveProvider({ children, onUnauthorized }: { children: ReactNode; onUnauthorized(): void }) {
  const [state, setState] = useState<StreamState>('connecting');
  const listeners = useRef(new Set<Listener>());
  const unauthorized = useRef(onUnauthorized);
  unauthorized.current = onUnauthorized;

  useEffect(() => {
    const broadcast = (message: LiveMessage) => {
      for (const listener of listeners.current) listener(message);
    };
    // It never gives up while the page is open: a manager restart or a network cut heals by
    // itself, and the stream resumes where it left off (or says reset).
    const stream = api.events({}, { maxReconnects: Infinity, onState: setState });
    void (async () => {
      try {
        for await (const message of stream) broadcast(message);
      } catch (err) {
        if (err instanceof PallasApiError && err.status === 401) unauthorized.current();
      }
    })();
    return () => stream.close();
  }, []);

  // Stable, so that subscribers do not re-subscribe when the connection state changes.
  const subscribe = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => { listeners.current.delete(listener); };
  }, []);
  const value = useMemo<LiveContext>(() => ({ state, subscribe }), [state, subscribe]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useLiveState(): StreamState {
  return useContext(Context)?.state ?? 'connecting';
}

/**
 * Calls `listener` for every live message while the component is mounted. The latest
 * listener is used, so it may close over fresh state without re-subscribing.
 */
export function useLiveEvents(listener: Listener): void {
  const context = useContext(Context);
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => context?.subscribe((m) => latest.current(m)), [context?.subscribe]);
}
