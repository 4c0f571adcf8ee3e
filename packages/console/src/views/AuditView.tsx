import { useEffect, useState } from 'react';
import type { AuditEntry, AuditOutcome, AuditQuery } from '@pallas/protocol';
import { api } from '../api/client.js';
import { Link, setQuery, useLocation } from '../app/router.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { Pager } from '../components/Pager.js';
import { useDebounced } from '../hooks/timing.js';
import { useResource } from '../hooks/useResource.js';
import { formatDateTime, formatRelative } from '../lib/format.js';

const PAGE_SIZE = 50;
const OUTCOMES: AuditOutcome[] = ['ok', 'denied', 'failed'];
/** What the manager accepts as an action filter (an action, or a prefix ending in `.` or `*`). */
const ACTION = /^[A-Za-z0-9._-]+\*?$/;

function queryFrom(search: URLSearchParams): AuditQuery {
  const outcome = search.get('outcome');
  const action = search.get('action');
  return {
    limit: PAGE_SIZE,
    offset: Math.max(0, Number(search.get('offset')) || 0),
    ...(search.get('actor') ? { actor: search.get('actor')! } : {}),
    ...(action && ACTION.test(action) ? { action } : {}),
    ...(search.get('target') ? { target: search.get('target')! } : {}),
    ...(OUTCOMES.includes(outcome as AuditOutcome) ? { outcome: outcome as AuditOutcome } : {}),
  };
}

/** "device 3f2a… (edge-berlin)", linked where the console has a page for it. */
export function AuditTarget({ target }: { target: AuditEntry['target'] }) {
  if (!target) return <span className="muted">—</span>;
  const label = target.name ?? target.id;
  const to = target.kind === 'device' ? `/devices/${target.id}` : target.kind === 'task' ? `/tasks/${target.id}` : undefined;
  return (
    <span title={`${target.kind} ${target.id}`}>
      <span className="muted">{target.kind} </span>
      {to ? <Link to={to}>{label}</Link> : label}
    </span>
  );
}

export function OutcomeBadge({ outcome }: { outcome: AuditOutcome }) {
  const tone = outcome === 'ok' ? 'good' : outcome === 'denied' ? 'warn' : 'bad';
  return <span className={`badge ${tone}`} data-outcome={outcome}>{outcome}</span>;
}

/** A text filter that writes itself into the URL once typing pauses. */
function useUrlText(key: string, search: URLSearchParams): [string, (v: string) => void] {
  const [text, setText] = useState(search.get(key) ?? '');
  const settled = useDebounced(text, 300);
  useEffect(() => {
    if (settled.trim() !== (search.get(key) ?? '')) setQuery({ [key]: settled.trim(), offset: undefined });
  }, [settled]);
  return [text, setText];
}

/** The audit log (admins): who did what to what, newest first, filtered and paged by the manager. */
export function AuditView() {
  const { query: search } = useLocation();
  const [actor, setActor] = useUrlText('actor', search);
  const [action, setAction] = useUrlText('action', search);
  const [target, setTarget] = useUrlText('target', search);
  const query = queryFrom(search);
  const page = useResource((signal) => api.call('listAudit', { query, signal }), [JSON.stringify(query)]);
  const actionError = action.trim() && !ACTION.test(action.trim()) ? 'An action such as user.create, or a prefix such as device.' : undefined;
  const data = page.data;
  return (
    <div className="view">
      <header className="view-head">
        <h1>Audit log</h1>
        <span className="muted">newest first</span>
        <div className="spacer" />
        <button type="button" className="button small" onClick={page.reload}>Refresh</button>
      </header>
      <div className="toolbar" role="search">
        <label className="filter"><span>Actor</span>
          <input name="audit-actor" placeholder="user, device or token" value={actor} onChange={(e) => setActor(e.target.value)} />
        </label>
        <label className="filter"><span>Action</span>
          <input name="audit-action" placeholder="e.g. device. or user.create" value={action} onChange={(e) => setAction(e.target.value)}
            aria-invalid={actionError ? true : undefined} aria-describedby={actionError ? 'audit-action-error' : undefined} title={actionError} />
        </label>
        <label className="filter"><span>Target id</span>
          <input name="audit-target" placeholder="device, task or user id" value={target} onChange={(e) => setTarget(e.target.value)} />
        </label>
        <label className="filter"><span>Outcome</span>
          <select name="audit-outcome" value={query.outcome ?? ''} onChange={(e) => setQuery({ outcome: e.target.value, offset: undefined })}>
            <option value="">Any outcome</option>
            {OUTCOMES.map((o) => <option key={o} value={o}>{o}</option>)}
          </select>
        </label>
      </div>
      {actionError && <small className="field-error" id="audit-action-error">{actionError}</small>}
      <ErrorNote error={page.error} onRetry={page.reload} />
      {data && (data.items.length === 0 ? <p className="empty">No entries match.</p> : (
        <div className="table-wrap">
          <table className="table stack audit-table">
            <thead><tr><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Outcome</th><th className="secondary">From</th></tr></thead>
            <tbody>
              {data.items.map((e) => (
                <tr key={e.id} data-action={e.action} data-outcome={e.outcome}>
                  <td title={formatDateTime(e.at)}>{formatRelative(e.at)}</td>
                  <td><span className="muted">{e.actor.kind} </span>{e.actor.name ?? e.actor.id ?? ''}</td>
                  <td className="mono">{e.action}</td>
                  <td className="target"><AuditTarget target={e.target} /></td>
                  <td><OutcomeBadge outcome={e.outcome} /></td>
                  <td className="secondary mono">{e.ip ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {data && <Pager offset={data.offset} limit={data.limit} total={data.total} onChange={(offset) => setQuery({ offset: offset || undefined })} />}
      {!data && page.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
