import { NAME_LIMITS, PAGE_LIMITS } from '@pallas/protocol/constants';
import { useState } from 'react';
import type { Role, User } from '@pallas/protocol';
import { api } from '../api/client.js';
import { useAuth } from '../auth/AuthProvider.js';
import { RoleBadge } from '../components/Badges.js';
import { ConfirmDialog, Dialog } from '../components/Dialog.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { Field } from '../components/Field.js';
import { useResource } from '../hooks/useResource.js';
import { formatRelative } from '../lib/format.js';

const ROLES: Array<{ role: Role; what: string }> = [
  { role: 'viewer', what: 'sees everything, changes nothing' },
  { role: 'operator', what: 'also manages devices, VMs, tasks and enrollment tokens' },
  { role: 'admin', what: 'also manages users' },
];
const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** The manager's password policy (docs/access-control.md). */
const MIN_PASSWORD = 12;

function RoleSelect({ value, onChange }: { value: Role; onChange(role: Role): void }) {
  return (
    <label className="field">
      <span>Role</span>
      <select name="role" value={value} onChange={(e) => onChange(e.target.value as Role)}>
        {ROLES.map((r) => <option key={r.role} value={r.role}>{r.role} — {r.what}</option>)}
      </select>
    </label>
  );
}

function CreateUserDialog({ onClose, onCreated }: { onClose(): void; onCreated(): void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const nameError = username && !USERNAME.test(username) ? 'Letters, digits and . _ @ - only, up to 64 characters' : undefined;
  const passwordError = password && password.length < MIN_PASSWORD ? `At least ${MIN_PASSWORD} characters` : undefined;
  return (
    <Dialog title="Create a user" submitLabel="Create user" onClose={onClose}
      canSubmit={!!username && password.length >= MIN_PASSWORD && !nameError}
      onSubmit={async () => { await api.call('createUser', { body: { username, password, role } }); onCreated(); }}>
      <Field label="User name" name="new-username" value={username} maxLength={NAME_LIMITS.username} onChange={(e) => setUsername(e.target.value)} error={nameError} autoComplete="off" autoFocus />
      <Field label="Password" name="new-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} error={passwordError} autoComplete="new-password" />
      <RoleSelect value={role} onChange={setRole} />
    </Dialog>
  );
}

function EditUserDialog({ user, onClose, onSaved }: { user: User; onClose(): void; onSaved(): void }) {
  const [role, setRole] = useState<Role>(user.role);
  const [password, setPassword] = useState('');
  const [currentPassword, setCurrentPassword] = useState('');
  // Changing your own password needs the current one (a session left open is not enough).
  const self = useAuth().user?.id === user.id;
  const passwordError = password && password.length < MIN_PASSWORD ? `At least ${MIN_PASSWORD} characters` : undefined;
  const changed = role !== user.role || password.length > 0;
  return (
    <Dialog title={`Edit ${user.username}`} submitLabel="Save" onClose={onClose} canSubmit={changed && !passwordError}
      onSubmit={async () => {
        await api.call('updateUser', {
          params: { id: user.id },
          body: {
            ...(role !== user.role ? { role } : {}),
            ...(password ? { password } : {}),
            ...(password && self ? { currentPassword } : {}),
          },
        });
        onSaved();
      }}>
      <RoleSelect value={role} onChange={setRole} />
      <Field label="New password (leave empty to keep)" name="reset-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)}
        error={passwordError} autoComplete="new-password" hint="Setting a password ends all of the user's sessions." />
      {self && password && (
        <Field label="Your current password" name="current-password" type="password" value={currentPassword}
          onChange={(e) => setCurrentPassword(e.target.value)} autoComplete="current-password" />
      )}
    </Dialog>
  );
}

/** Users and their roles (admins only; the manager refuses everyone else anyway). */
export function UsersView() {
  const { user: me } = useAuth();
  const users = useResource((signal) => api.call('listUsers', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const [open, setOpen] = useState<{ kind: 'create' } | { kind: 'edit' | 'delete'; user: User } | null>(null);
  const close = () => setOpen(null);
  return (
    <div className="view">
      <header className="view-head">
        <h1>Users</h1>
        <div className="spacer" />
        <button type="button" className="button primary" onClick={() => setOpen({ kind: 'create' })}>Create user</button>
      </header>
      <ErrorNote error={users.error} onRetry={users.reload} />
      {users.data && (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>User</th><th>Role</th><th className="secondary">Created</th><th /></tr></thead>
            <tbody>
              {users.data.items.map((u) => (
                <tr key={u.id} data-username={u.username}>
                  <td>{u.username}{u.id === me?.id && <span className="muted"> (you)</span>}</td>
                  <td><RoleBadge role={u.role} /></td>
                  <td className="secondary">{formatRelative(u.createdAt)}</td>
                  <td className="actions">
                    <div className="button-group">
                      <button type="button" className="button small" onClick={() => setOpen({ kind: 'edit', user: u })}>Edit</button>
                      {u.id !== me?.id && <button type="button" className="button small danger-text" onClick={() => setOpen({ kind: 'delete', user: u })}>Delete</button>}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open?.kind === 'create' && <CreateUserDialog onClose={close} onCreated={users.reload} />}
      {open?.kind === 'edit' && <EditUserDialog user={open.user} onClose={close} onSaved={users.reload} />}
      {open?.kind === 'delete' && (
        <ConfirmDialog title={`Delete ${open.user.username}?`} confirmLabel="Delete user" onClose={close}
          message={<>The user <strong>{open.user.username}</strong> is removed and logged out everywhere.</>}
          onConfirm={async () => { await api.call('deleteUser', { params: { id: open.user.id } }); users.reload(); }} />
      )}
    </div>
  );
}
