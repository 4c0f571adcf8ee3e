import { NAME_LIMITS, PAGE_LIMITS } from '@pallas/protocol/constants';
import { useState } from 'react';
import type { ApiToken, CreatedApiToken, Role } from '@pallas/protocol';
import { api } from '../api/client.js';
import { roleAtLeast, useAuth } from '../auth/AuthProvider.js';
import { RoleBadge } from '../components/Badges.js';
import { CopyButton } from '../components/CopyButton.js';
import { ConfirmDialog, Dialog } from '../components/Dialog.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { Field } from '../components/Field.js';
import { useResource } from '../hooks/useResource.js';
import { formatDateTime, formatRelative } from '../lib/format.js';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];
const EXPIRY_CHOICES = [
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: 365, label: '1 year' },
  { days: 0, label: 'never' },
];

function CreateApiTokenDialog({ myRole, onCreated, onClose }: { myRole: Role; onCreated(t: CreatedApiToken): void; onClose(): void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>(myRole);
  const [days, setDays] = useState(90);
  return (
    <Dialog title="Create an API token" submitLabel="Create token" canSubmit={name.trim().length > 0} onClose={onClose}
      onSubmit={async () => onCreated(await api.call('createApiToken', { body: { name: name.trim(), role, ...(days ? { expiresInDays: days } : {}) } }))}>
      <Field label="Name" name="api-token-name" value={name} maxLength={NAME_LIMITS.apiToken} onChange={(e) => setName(e.target.value)} autoFocus hint="What uses it, e.g. nightly backup script" />
      <div className="field-row">
        <label className="field">
          <span>Role (at most yours)</span>
          <select name="api-token-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.filter((r) => roleAtLeast(myRole, r)).map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </label>
        <label className="field">
          <span>Expires after</span>
          <select name="api-token-expiry" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {EXPIRY_CHOICES.map((c) => <option key={c.days} value={c.days}>{c.label}</option>)}
          </select>
        </label>
      </div>
    </Dialog>
  );
}

function tokenState(t: ApiToken): { text: string; tone: string } {
  if (t.revokedAt) return { text: 'revoked', tone: '' };
  if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return { text: 'expired', tone: '' };
  return { text: 'active', tone: 'good' };
}

/** Your own API tokens for scripts and the CLI: create (the secret is shown once), list, revoke. */
export function ApiTokensView() {
  const { user } = useAuth();
  const tokens = useResource((signal) => api.call('listApiTokens', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedApiToken | null>(null);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  return (
    <div className="view">
      <header className="view-head">
        <h1>API tokens</h1>
        <div className="spacer" />
        <button type="button" className="button primary" onClick={() => setCreating(true)}>Create API token</button>
      </header>
      <p className="muted">Tokens for scripts and the CLI (<span className="mono">Authorization: Bearer …</span>). Each acts as you, with at most your role.</p>
      {created && (
        <section className="panel highlight" aria-label="New API token">
          <h2>Token created: {created.name}</h2>
          <p><strong>The token is shown only now</strong>; the manager keeps only its hash.</p>
          <div className="command">
            <code data-testid="api-token-secret">{created.token}</code>
            <CopyButton text={created.token} label="Copy token" />
          </div>
          <button type="button" className="button" onClick={() => setCreated(null)}>Done</button>
        </section>
      )}
      <ErrorNote error={tokens.error} onRetry={tokens.reload} />
      {tokens.data && (tokens.data.items.length === 0 ? <p className="empty">You have no API tokens.</p> : (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>Name</th><th>Role</th><th>Status</th><th className="secondary">Last used</th><th className="secondary">Expires</th><th /></tr></thead>
            <tbody>
              {tokens.data.items.map((t) => {
                const state = tokenState(t);
                return (
                  <tr key={t.id} data-api-token={t.name}>
                    <td>{t.name}</td>
                    <td><RoleBadge role={t.role} /></td>
                    <td><span className={`badge ${state.tone}`}>{state.text}</span></td>
                    <td className="secondary">{t.lastUsedAt ? formatRelative(t.lastUsedAt) : 'never'}</td>
                    <td className="secondary" title={formatDateTime(t.expiresAt)}>{t.expiresAt ? formatRelative(t.expiresAt) : 'never'}</td>
                    <td className="actions">{state.text === 'active' && <button type="button" className="button small danger-text" onClick={() => setRevoking(t)}>Revoke</button>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ))}
      {creating && user && <CreateApiTokenDialog myRole={user.role} onClose={() => setCreating(false)} onCreated={(t) => { setCreated(t); tokens.reload(); }} />}
      {revoking && (
        <ConfirmDialog title={`Revoke ${revoking.name}?`} confirmLabel="Revoke token" onClose={() => setRevoking(null)}
          message={<>Anything using <strong>{revoking.name}</strong> is refused from now on. This cannot be undone.</>}
          onConfirm={async () => { await api.call('revokeApiToken', { params: { id: revoking.id } }); tokens.reload(); }} />
      )}
    </div>
  );
}
