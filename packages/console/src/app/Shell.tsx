import { useEffect, useRef, useState, type ReactNode } from 'react';
import { roleAtLeast, useAuth } from '../auth/AuthProvider.js';
import { RoleBadge } from '../components/Badges.js';
import { LiveAnnouncer } from '../components/LiveAnnouncer.js';
import { useLiveState } from '../live/LiveProvider.js';
import { NAV } from './nav.js';
import { Link, useLocation } from './router.js';

const LIVE_TEXT = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' } as const;

/**
 * The frame around every view: a skip link, brand, menu, who is logged in, the live-stream
 * state, and the live region that announces task progress and devices going offline. On a
 * narrow screen (≤ 820 px, styles.css) the menu folds behind a menu button.
 */
export function Shell({ children }: { children: ReactNode }) {
  const { user, logout } = useAuth();
  const { path } = useLocation();
  const live = useLiveState();
  const main = useRef<HTMLElement>(null);
  const menuButton = useRef<HTMLButtonElement>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const first = useRef(true);

  // A new view: the folded menu closes, and focus moves to the content (as a page load would
  // put it at the top), so keyboard and screen-reader users start at the view, not the menu.
  useEffect(() => {
    setMenuOpen(false);
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus({ preventScroll: true });
  }, [path]);

  // Escape closes the folded menu and gives focus back to its button.
  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      setMenuOpen(false);
      menuButton.current?.focus();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [menuOpen]);

  const active = (to: string) => (to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`));
  return (
    <div className="shell">
      <a className="skip-link" href="#content" onClick={(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
      <header className="topbar">
        <button type="button" className="menu-button" ref={menuButton} aria-expanded={menuOpen} aria-controls="sections"
          onClick={() => setMenuOpen((open) => !open)}>
          <span className="menu-icon" aria-hidden="true" />
          <span className="menu-label">Menu</span>
        </button>
        <Link to="/" className="brand" aria-label="Pallas overview"><span className="brand-mark" aria-hidden="true">P</span> <span className="brand-name">Pallas</span></Link>
        <span className={`live-dot ${live}`} title="Live updates from the manager">{LIVE_TEXT[live]}</span>
        <div className="user-box">
          <span className="user-name" data-testid="user-name" title={user?.username}>{user?.username}</span>
          {user && <RoleBadge role={user.role} />}
          <button type="button" className="button small" onClick={() => void logout()}>Log out</button>
        </div>
      </header>
      <nav id="sections" className={`sidenav${menuOpen ? ' open' : ''}`} aria-label="Sections">
        {NAV.filter((item) => roleAtLeast(user?.role, item.role)).map((item) => (
          <Link key={item.to} to={item.to} className={active(item.to) ? 'active' : undefined} aria-current={active(item.to) ? 'page' : undefined}
            onClick={() => setMenuOpen(false)}>
            {item.label}
          </Link>
        ))}
      </nav>
      <main className="content" id="content" ref={main} tabIndex={-1}>{children}</main>
      <LiveAnnouncer />
    </div>
  );
}
