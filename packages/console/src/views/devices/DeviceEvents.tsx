import { useEffect } from 'react';
import { api } from '../../api/client.js';
import { Link } from '../../app/router.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { useResource } from '../../hooks/useResource.js';
import { formatDateTime, formatRelative } from '../../lib/format.js';
import { EntryOutcome } from '../AuditView.js';

const RECENT = 10;

/**
 * What was done to this device lately, from the audit log filtered by target (admins only: the
 * manager keeps the audit log from other roles). `reloadKey` changes when the page did
 * something to the device, so the list follows.
 */
export function DeviceEvents({ deviceId, reloadKey }: { deviceId: string; reloadKey: unknown }) {
  const events = useResource((signal) => api.call('listAudit', { query: { target: deviceId, limit: RECENT }, signal }), [deviceId, reloadKey]);
  // An action's audit record is stored just after its response (transport/http/audit-hook.ts,
  // batched per event-loop turn), so the read made right after the action can come a moment
  // too early and miss it: read once more shortly after.
  const { reload } = events;
  useEffect(() => {
    const again = setTimeout(reload, 1000);
    return () => clearTimeout(again);
  }, [deviceId, reloadKey, reload]);
  return (
    <section className="panel" aria-label="Recent events">
      <div className="panel-head">
        <h2>Recent events</h2>
        <Link to={`/audit?target=${encodeURIComponent(deviceId)}`}>All in the audit log</Link>
      </div>
      <ErrorNote error={events.error} onRetry={events.reload} />
      {events.data && (events.data.items.length === 0 ? <p className="empty">Nothing recorded for this device yet.</p> : (
        <ul className="event-list">
          {events.data.items.map((e) => (
            <li key={e.id} data-action={e.action}>
              <span className="mono">{e.action}</span>
              {e.target && e.target.kind !== 'device' && <span>{e.target.kind} {e.target.name ?? e.target.id}</span>}
              <span className="muted">by {e.actor.name ?? e.actor.id ?? e.actor.kind}</span>
              <span><EntryOutcome e={e} /></span>
              <span className="muted event-time" title={formatDateTime(e.at)}>{formatRelative(e.at)}</span>
            </li>
          ))}
        </ul>
      ))}
    </section>
  );
}
