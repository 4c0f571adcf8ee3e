import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { LiveEvent } from '@pallas/protocol';
import { openEventStream, type StreamState } from './event-stream.js';

/** What a view hears: a live event, or `reset` (events were lost: reload what is shown). */
export type LiveMessage = LiveEvent | { type: 'reset' };
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
    const stream = openEventStream({
      onEvent: broadcast,
      onReset: () => broadcast({ type: 'reset' }),
      onState: setState,
      onUnauthorized: () => unauthorized.current(),
    });
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
