import type { Role } from '@pallas/protocol';

export interface NavItem {
  to: string;
  label: string;
  /** The lowest role that may open the view; the manager enforces the same rule. */
  role: Role;
}

/**
 * The console's sections, in menu order. Views for APIs that do not exist yet are not listed
 * (no placeholder UI); each gets an entry here when its API lands:
 * - Artifacts (`/artifacts`: upload with progress, list with size and hash, delete), operator.
 * - Audit log (`/audit`), admin.
 * - Pending devices (approval), operator — or as a filter of the devices view.
 */
export const NAV: NavItem[] = [
  { to: '/', label: 'Overview', role: 'viewer' },
  { to: '/devices', label: 'Devices', role: 'viewer' },
  { to: '/tasks', label: 'Tasks', role: 'viewer' },
  { to: '/enrollment', label: 'Enrollment', role: 'operator' },
  { to: '/users', label: 'Users', role: 'admin' },
];
