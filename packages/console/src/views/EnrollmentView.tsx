import { NAME_LIMITS, PAGE_LIMITS } from '@pallas/protocol/constants';
import { useState } from 'react';
import type { CreatedEnrollmentToken, EnrollmentToken } from '@pallas/protocol';
import { api } from '../api/client.js';
import { ConfirmDialog, Dialog } from '../components/Dialog.js';
import { CopyButton } from '../components/CopyButton.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { Field } from '../components/Field.js';
import { useResource } from '../hooks/useResource.js';
import { agentCommand } from '../lib/agent-command.js';
import { formatDateTime, formatRelative } from '../lib/format.js';

const TTL_CHOICES = [
  { label: '1 hour', sec: 3600 },
  { label: '1 day', sec: 86400 },
  { label: '7 days', sec: 7 * 86400 },
  { label: '30 days', sec: 30 * 86400 },
];

function tokenStatus(t: EnrollmentToken): { text: string; tone: string } {
  if (t.revoked) return { text: 'revoked', tone: 'muted' };
  if (Date.parse(t.expiresAt) <= Date.now()) return { text: 'expired', tone: 'muted' };
  if (t.uses >= t.maxUses) return { text: 'used up', tone: 'muted' };
  return { text: 'active', tone: 'good' };
}

function CreateTokenDialog({ onCreated, onClose }: { onCreated(t: CreatedEnrollmentToken): void; onClose(): void }) {
  const [name, setName] = useState('');
  const [ttlSec, setTtlSec] = useState(86400);
  const [maxUses, setMaxUses] = useState('1');
  const uses = Number(maxUses);
  const usesError = Number.isInteger(uses) && uses >= 1 && uses <= 1_000_000 ? undefined : 'A whole number from 1 to 1,000,000';
  return (
    <Dialog title="Create an enrollment token" submitLabel="Create token" canSubmit={!usesError} onClose={onClose}
      onSubmit={async () => onCreated(await api.call('createEnrollmentToken', { body: { ...(name.trim() ? { name: name.trim() } : {}), ttlSec, maxUses: uses } }))}>
      <Field label="Name (optional)" name="token-name" value={name} maxLength={NAME_LIMITS.enrollmentToken} onChange={(e) => setName(e.target.value)} hint="Where it is for, e.g. shop rollout week 12" autoFocus />
      <div className="field-row">
        <label className="field">
          <span>Valid for</span>
          <select name="token-ttl" value={ttlSec} onChange={(e) => setTtlSec(Number(e.target.value))}>
            {TTL_CHOICES.map((c) => <option key={c.sec} value={c.sec}>{c.label}</option>)}
          </select>
        </label>
        <Field label="Devices it may enroll" name="token-uses" type="number" min={1} value={maxUses} onChange={(e) => setMaxUses(e.target.value)} error={usesError} />
      </div>
    </Dialog>
  );
}

/** The secret of a new token, shown once with the exact command to run on the device. */
function NewTokenNotice({ token, onDone }: { token: CreatedEnrollmentToken; onDone(): void }) {
  const command = agentCommand(window.location.origin, token.token);
  return (
    <section className="panel highlight" aria-label="New token">
      <h2>Token created{token.name ? `: ${token.name}` : ''}</h2>
      <p>Run this on each device to enroll it (up to {token.maxUses}, until {formatDateTime(token.expiresAt)}). <strong>The token is shown only now</strong>; the manager keeps only its hash.</p>
      <div className="command">
        <code data-testid="agent-command">{command}</code>
        <CopyButton text={command} label="Copy command" />
      </div>
      <p className="muted small">Devices must reach this manager at {window.location.origin}; if that is not their address for it, put the right one after --manager.</p>
      <button type="button" className="button" onClick={onDone}>Done</button>
    </section>
  );
}

/** Enrollment tokens: create (with the agent command), list, revoke. Operators and admins. */
export function EnrollmentView() {
  const tokens = useResource((signal) => api.call('listEnrollmentTokens', { query: { limit: PAGE_LIMITS.max }, signal }), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedEnrollmentToken | null>(null);
  const [revoking, setRevoking] = useState<EnrollmentToken | null>(null);
  return (
    <div className="view">
      <header className="view-head">
        <h1>Enrollment tokens</h1>
        <div className="spacer" />
        <button type="button" className="button primary" onClick={() => setCreating(true)}>Create token</button>
      </header>
      {created && <NewTokenNotice token={created} onDone={() => setCreated(null)} />}
      <ErrorNote error={tokens.error} onRetry={tokens.reload} />
      {tokens.data && (tokens.data.items.length === 0 ? <p className="empty">No enrollment tokens yet.</p> : (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th>Name</th><th>Status</th><th className="num">Uses</th><th className="secondary">Expires</th><th className="secondary">Created</th><th /></tr></thead>
            <tbody>
              {tokens.data.items.map((t) => {
                const status = tokenStatus(t);
                return (
                  <tr key={t.id} data-token-id={t.id}>
                    <td>{t.name || <span className="muted">unnamed</span>}</td>
                    <td><span className={`badge ${status.tone}`}>{status.text}</span></td>
                    <td className="num">{t.uses} / {t.maxUses}</td>
                    <td className="secondary" title={t.expiresAt}>{formatRelative(t.expiresAt)}</td>
                    <td className="secondary">{formatRelative(t.createdAt)} by {t.createdBy}</td>
                    <td className="actions">{status.text === 'active' && <button type="button" className="button small danger-text" onClick={() => setRevoking(t)}>Revoke</button>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ))}
      {creating && <CreateTokenDialog onClose={() => setCreating(false)} onCreated={(t) => { setCreated(t); tokens.reload(); }} />}
      {revoking && (
        <ConfirmDialog title="Revoke this token?" confirmLabel="Revoke" onClose={() => setRevoking(null)}
          message={<>No device can enroll with <strong>{revoking.name || 'this token'}</strong> any more. Devices already enrolled keep working.</>}
          onConfirm={async () => { await api.call('revokeEnrollmentToken', { params: { id: revoking.id } }); tokens.reload(); }} />
      )}
    </div>
  );
}
