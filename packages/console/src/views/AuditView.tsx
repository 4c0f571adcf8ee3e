import { useEffect, useState } from 'react';
import type { AuditEntry, AuditOutcome, AuditQuery } from '@pallas/protocol';
import { api } from '../api/client.js';
import { Link, setQuery, useLocation } from '../app/router.js';
import { TaskStateBadge } from '../components/Badges.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { IdText } from '../components/IdText.js';
import { Pager } from '../components/Pager.js';
import { useDebounced } from '../hooks/timing.js';
import { useResource } from '../hooks/useResource.js';
import { formatDateTime, formatRelative } from '../lib/format.js';
import { TASK_STATE_LABEL } from '../lib/task-text.js';

const PAGE_SIZE = 50;
const OUTCOMES: AuditOutcome[] = ['ok', 'denied', 'failed'];
/** What the manager accepts as an action filter (an action, or a prefix ending in `.` or `*`). */
const ACTION = /^[A-Za-z0-9._-]+\*?$/;
/** The sign-in actions "Hide sign-ins" leaves out (the manager's `exclude`). */
const SIGN_INS = 'login.,logout';

type Filters = Omit<AuditQuery, 'limit' | 'offset'>;

function filtersFrom(search: URLSearchParams): Filters {
  const outcome = search.get('outcome');
  const action = search.get('action');
  return {
    ...(search.get('actor') ? { actor: search.get('actor')! } : {}),
    ...(action && ACTION.test(action) ? { action } : {}),
    ...(search.get('hideLogins') === '1' ? { exclude: SIGN_INS } : {}),
    ...(search.get('target') ? { target: search.get('target')! } : {}),
    ...(OUTCOMES.includes(outcome as AuditOutcome) ? { outcome: outcome as AuditOutcome } : {}),
  };
}

/** "device edge-berlin 3f2a…", linked where the console has a page for it; the id is secondary. */
export function AuditTarget({ target, detail }: { target: AuditEntry['target']; detail?: AuditEntry['detail'] }) {
  if (!target) return <span className="muted">—</span>;
  const label = target.name ?? target.id;
  const device = typeof detail?.device === 'string' ? detail.device : undefined;
  const deviceName = typeof detail?.deviceName === 'string' ? detail.deviceName : undefined;
  const to = target.kind === 'device' ? `/devices/${target.id}` : target.kind === 'task' ? `/tasks/${target.id}` : target.kind === 'vm' && device ? `/devices/${device}` : undefined;
  return (
    <span>
      <span className="muted">{target.kind} </span>
      {to ? <Link to={to}>{label}</Link> : label}
      {deviceName && <span className="muted"> on {deviceName}</span>}
      {target.name !== undefined && <IdText id={target.id} short />}
    </span>
  );
}

export function OutcomeBadge({ outcome }: { outcome: AuditOutcome }) {
  const tone = outcome === 'ok' ? 'good' : outcome === 'denied' ? 'warn' : 'bad';
  return <span className={`badge ${tone}`} data-outcome={outcome}>{outcome}</span>;
}

/** The request's outcome, its reason when refused, and the task it started as it stands now. */
export function EntryOutcome({ e }: { e: AuditEntry }) {
  return (
    <>
      <OutcomeBadge outcome={e.outcome} />
      {e.reason && <span className="audit-reason" data-reason={e.reason.code}>{e.reason.message || e.reason.code}</span>}
      {e.task && (
        <span className="audit-task" data-task-state={e.task.state}>
          {' '}<Link to={`/tasks/${e.task.id}`}>task</Link>{' '}
          {e.task.state in TASK_STATE_LABEL
            ? <TaskStateBadge state={e.task.state as keyof typeof TASK_STATE_LABEL} late={e.task.lateOutcome as never} />
            : e.task.state}
          {e.task.error && e.task.state !== 'timed_out' && <span className="audit-reason">{e.task.error.message || e.task.error.code}</span>}
        </span>
      )}
    </>
  );
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

/**
 * The audit log (admins): who did what to what, newest first, filtered and paged by the
 * manager; names before ids, why a request was refused, how the task it started went; the
 * same filters export the whole log as CSV or JSON (`GET /audit/export`, a download).
 */
export function AuditView() {
  const { query: search } = useLocation();
  const [actor, setActor] = useUrlText('actor', search);
  const [action, setAction] = useUrlText('action', search);
  const [target, setTarget] = useUrlText('target', search);
  const filters = filtersFrom(search);
  const query: AuditQuery = { ...filters, limit: PAGE_SIZE, offset: Math.max(0, Number(search.get('offset')) || 0) };
  const page = useResource((signal) => api.call('listAudit', { query, signal }), [JSON.stringify(query)]);
  const actionError = action.trim() && !ACTION.test(action.trim()) ? 'An action such as user.create, or a prefix such as device.' : undefined;
  const data = page.data;
  return (
    <div className="view">
      <header className="view-head">
        <h1>Audit log</h1>
        <span className="muted">newest first</span>
        <div className="spacer" />
        <a className="button small" href={api.url('exportAudit', undefined, { ...filters, format: 'csv' })} download data-testid="export-csv">Export CSV</a>
        <a className="button small" href={api.url('exportAudit', undefined, { ...filters, format: 'json' })} download data-testid="export-json">Export JSON</a>
        <button type="button" className="button small" onClick={page.reload}>Refresh</button>
      </header>
      <div className="toolbar audit-filters" role="search">
        <label className="filter"><span>Actor</span>
          <input name="audit-actor" placeholder="user, device or token" value={actor} onChange={(e) => setActor(e.target.value)} />
        </label>
        <label className="filter"><span>Action</span>
          <input name="audit-action" placeholder="e.g. device. or user.create" value={action} onChange={(e) => setAction(e.target.value)}
            aria-invalid={actionError ? true : undefined} aria-describedby={actionError ? 'audit-action-error' : undefined} title={actionError} />
        </label>
        <label className="filter"><span>Target</span>
          <input name="audit-target" placeholder="name or id" value={target} onChange={(e) => setTarget(e.target.value)} />
        </label>
        <label className="filter"><span>Outcome</span>
          <select name="audit-outcome" value={filters.outcome ?? ''} onChange={(e) => setQuery({ outcome: e.target.value, offset: undefined })}>
            <option value="">Any outcome</option>
            {OUTCOMES.map((o) => <option key={o} value={o}>{o}</option>)}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" name="audit-hide-logins" checked={filters.exclude === SIGN_INS} onChange={(e) => setQuery({ hideLogins: e.target.checked ? '1' : undefined, offset: undefined })} />
          Hide sign-ins
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
                <tr key={e.id} data-action={e.action} data-outcome={e.outcome} data-entry-id={e.id}>
                  <td title={formatDateTime(e.at)}>{formatRelative(e.at)}</td>
                  <td><span className="muted">{e.actor.kind} </span>{e.actor.name ?? e.actor.id ?? ''}</td>
                  <td className="mono">{e.action}</td>
                  <td className="target"><AuditTarget target={e.target} detail={e.detail} /></td>
                  <td className="outcome"><EntryOutcome e={e} /></td>
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
