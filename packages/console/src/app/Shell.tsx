import { useEffect, useRef, type ReactNode } from 'react';
import { roleAtLeast, useAuth } from '../auth/AuthProvider.js';
import { RoleBadge } from '../components/Badges.js';
import { useLiveState } from '../live/LiveProvider.js';
import { NAV } from './nav.js';
import { Link, useLocation } from './router.js';

const LIVE_TEXT = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' } as const;

/** The frame around every view: brand, menu, who is logged in, the live-stream state. */
export function Shell({ children }: { children: ReactNode }) {
  const { user, logout } = useAuth();
  const { path } = useLocation();
  const live = useLiveState();
  const nav = useRef<HTMLElement>(null);
  // On a phone the menu is one scrolling line: keep the current section in view.
  useEffect(() => {
    const reveal = () => nav.current?.querySelector('a.active')?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    reveal();
    window.addEventListener('resize', reveal); // a phone turned, a window narrowed
    return () => window.removeEventListener('resize', reveal);
  }, [path]);
  const active = (to: string) => (to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`));
  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand"><span className="brand-mark" aria-hidden="true">P</span> Pallas</Link>
        <span className={`live-dot ${live}`} title="Live updates from the manager">{LIVE_TEXT[live]}</span>
        <div className="user-box">
          <span className="user-name" data-testid="user-name">{user?.username}</span>
          {user && <RoleBadge role={user.role} />}
          <button type="button" className="button small" onClick={() => void logout()}>Log out</button>
        </div>
      </header>
      <nav className="sidenav" aria-label="Sections" ref={nav}>
        {NAV.filter((item) => roleAtLeast(user?.role, item.role)).map((item) => (
          <Link key={item.to} to={item.to} className={active(item.to) ? 'active' : undefined} aria-current={active(item.to) ? 'page' : undefined}>
            {item.label}
          </Link>
        ))}
      </nav>
      <main className="content">{children}</main>
    </div>
  );
}
