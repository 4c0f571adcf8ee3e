import type { Role } from '@pallas/protocol';

export interface NavItem {
  to: string;
  label: string;
  /** The lowest role that may open the view; the manager enforces the same rule. */
  role: Role;
}

/** The console's sections, in menu order. */
export const NAV: NavItem[] = [
  { to: '/', label: 'Overview', role: 'viewer' },
  { to: '/devices', label: 'Devices', role: 'viewer' },
  { to: '/tasks', label: 'Tasks', role: 'viewer' },
  { to: '/groups', label: 'Groups', role: 'viewer' },
  { to: '/rollouts', label: 'Rollouts', role: 'viewer' },
  { to: '/artifacts', label: 'Artifacts', role: 'viewer' },
  { to: '/enrollment', label: 'Enrollment', role: 'operator' },
  { to: '/users', label: 'Users', role: 'admin' },
  { to: '/audit', label: 'Audit log', role: 'admin' },
  // Everyone manages their own tokens (docs/access-control.md).
  { to: '/api-tokens', label: 'API tokens', role: 'viewer' },
];
