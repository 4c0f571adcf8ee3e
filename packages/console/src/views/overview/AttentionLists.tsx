import type { ReactNode } from 'react';
import type { Device, Presence } from '@pallas/protocol';
import { formatRelative } from '@pallas/protocol/units';
import { api } from '../../api/client.js';
import { Link } from '../../app/router.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { useEvery, useThrottled } from '../../hooks/timing.js';
import { useResource, type Resource } from '../../hooks/useResource.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { formatClock, formatCount } from '../../lib/format.js';

const SHOWN = 5;

interface Row { id: string; name: string; detail: ReactNode; to?: string }

function AttentionList<T>({ title, name, resource, rows, empty, more }: {
  title: string; name: string; resource: Resource<T>; rows(data: T): Row[]; empty: string; more?: (data: T) => ReactNode;
}) {
  const data = resource.data;
  const list = data === undefined ? undefined : rows(data);
  return (
    <section className="panel attention" aria-labelledby={`attention-${name}`} data-attention={name}>
      <h2 id={`attention-${name}`}>{title}</h2>
      <ErrorNote error={resource.error} onRetry={resource.reload} />
      {list && list.length === 0 && <p className="muted small">{empty}</p>}
      {list && list.length > 0 && (
        <ul className="attention-list">
          {list.map((r) => (
            <li key={r.id} data-device-id={r.id}>
              <Link to={`/devices/${r.id}`} className="clip-name" title={r.name}>{r.name}</Link>
              <span className="muted small attention-detail">{r.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {data !== undefined && more?.(data)}
      {data === undefined && resource.loading && <p className="muted">Loading…</p>}
    </section>
  );
}

const byPresence = (presence: Presence) => (signal: AbortSignal) =>
  api.call('listDevices', { query: { presence, status: 'active', sort: 'lastSeenAt', limit: SHOWN }, signal });

const lastSeen = (d: Device) => (d.lastSeenAt ? `last seen ${formatRelative(d.lastSeenAt)} (${formatClock(d.lastSeenAt)})` : 'never connected');

/**
 * What needs attention: the devices offline longest, the unresponsive ones (longest silent
 * first), and the devices whose tasks failed most in 24 h. Each reloads on the live events
 * that can change it, at most every 2 s, and once a minute so that "how long" keeps up.
 */
export function AttentionLists() {
  const offline = useResource(byPresence('offline'), []);
  const unresponsive = useResource(byPresence('unresponsive'), []);
  const failing = useResource((signal) => api.call('fleetFailingDevices', { query: { limit: SHOWN }, signal }), []);
  const reloadDevices = useThrottled(() => { offline.reload(); unresponsive.reload(); }, 2000);
  const reloadFailing = useThrottled(failing.reload, 2000);
  useLiveEvents((m) => {
    if (m.type === 'reset') { reloadDevices(); reloadFailing(); }
    if (m.type === 'device') reloadDevices();
    if (m.type === 'task' && (m.task.state === 'failed' || m.task.state === 'timed_out')) reloadFailing();
  });
  useEvery(() => { offline.reload(); unresponsive.reload(); failing.reload(); }, 60_000);
  const all = (presence: Presence, n: number) => n > SHOWN && <Link to={`/devices?presence=${presence}`} className="small">All {formatCount(n)} {presence} devices</Link>;
  return (
    <div className="columns attention-columns">
      <AttentionList title="Offline longest" name="offline" resource={offline} empty="No device is offline."
        rows={(page) => page.items.map((d) => ({ id: d.id, name: d.name, detail: lastSeen(d) }))} more={(page) => all('offline', page.total)} />
      <AttentionList title="Unresponsive" name="unresponsive" resource={unresponsive} empty="No device is unresponsive."
        rows={(page) => page.items.map((d) => ({ id: d.id, name: d.name, detail: `silent since ${formatClock(d.lastSeenAt)} (${formatRelative(d.lastSeenAt)})` }))}
        more={(page) => all('unresponsive', page.total)} />
      <AttentionList title="Failing, last 24 h" name="failing" resource={failing} empty="No task failed in the last 24 h."
        rows={(res) => res.items.map((d) => ({
          id: d.deviceId, name: d.name,
          detail: <>{formatCount(d.failed)} failed{d.topErrorCode ? <>, mostly <code>{d.topErrorCode}</code></> : ''} · last {formatRelative(d.lastFailedAt)}</>,
        }))} />
    </div>
  );
}
