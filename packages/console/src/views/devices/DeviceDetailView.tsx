import { useRef, useState } from 'react';
import type { Device, Presence, Task } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { Link, useLocation } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { DeviceFlagBadges, DeviceStatusBadge, PresenceBadge } from '../../components/Badges.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { pageTitle, useDocumentTitle } from '../../hooks/useDocumentTitle.js';
import { useResource } from '../../hooks/useResource.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { formatClock } from '../../lib/format.js';
import { rangeOf } from '../../lib/series.js';
import { TaskTable, upsertTask } from '../tasks/TaskTable.js';
import { DeviceActions } from './DeviceActions.js';
import { DeviceEvents } from './DeviceEvents.js';
import { DeviceFacts } from './DeviceFacts.js';
import { DeviceHistoryPanel } from './DeviceHistoryPanel.js';
import { DeviceVms } from './DeviceVms.js';

const RECENT_TASKS = 20;

/** One device: host, resources, history, VMs and its recent tasks, all kept live by the event stream. */
export function DeviceDetailView({ deviceId }: { deviceId: string }) {
  const range = rangeOf(useLocation().query.get('range'));
  const canOperate = useCan('operator');
  const isAdmin = useCan('admin');
  const device = useResource((signal) => api.call('getDevice', { params: { id: deviceId }, signal }), [deviceId]);
  const tasks = useResource(async (signal) => (await api.call('listTasks', { query: { deviceId, limit: RECENT_TASKS }, signal })).items, [deviceId]);

  // Counts the actions done on this page, so the recent events follow them.
  const [actionsDone, setActionsDone] = useState(0);
  const live = useRef<{ presence: Presence; lastSeenAt: string } | null>(null);
  const addTask = (task: Task) => tasks.set((list) => upsertTask(list ?? [], task, true, RECENT_TASKS));
  useLiveEvents((m) => {
    if (m.type === 'reset') {
      device.reload();
      tasks.reload();
    } else if (m.type === 'task' && m.task.deviceId === deviceId) {
      addTask(m.task);
    } else if (m.type === 'vms' && m.deviceId === deviceId) {
      device.set((d) => d && { ...d, vms: m.vms });
    } else if (m.type === 'device' && m.device.id === deviceId) {
      live.current = { presence: m.device.presence, lastSeenAt: m.device.lastSeenAt ?? '' };
      if (m.device.removed) device.reload(); // shows "not found"
      // A device that (re)connects may have new facts; read them again.
      else device.set((d) => d && { ...d, presence: m.device.presence, lastSeenAt: m.device.lastSeenAt });
      if (m.device.presence === 'online') device.reload();
    }
  });

  // The store learns of presence a moment after the live stream (status buffer): a reload right
  // after an `online` event can still say offline. The newer of the two wins.
  const d: Device | undefined = device.data && live.current && (device.data.lastSeenAt ?? '') < live.current.lastSeenAt
    ? { ...device.data, presence: live.current.presence, lastSeenAt: live.current.lastSeenAt }
    : device.data;
  useDocumentTitle(d && pageTitle(d.name, 'Devices'));
  return (
    <div className="view">
      <nav className="breadcrumb"><Link to="/devices">Devices</Link> /</nav>
      <ErrorNote error={device.error} onRetry={device.reload} />
      {d && (
        <>
          <header className="view-head">
            <h1 data-testid="device-title">{d.name}</h1>
            <PresenceBadge presence={d.presence} />
            <DeviceStatusBadge status={d.status} />
            <DeviceFlagBadges flags={d.flags} />
            {d.tags.map((t) => <span key={t} className="tag">{t}</span>)}
            <div className="spacer" />
            {canOperate && <DeviceActions device={d} onChanged={(changed) => { device.set(() => changed); setActionsDone((n) => n + 1); }} />}
          </header>
          {d.status === 'pending' && (
            <div className="notice" data-testid="pending-notice">This device enrolled and waits for approval: it cannot connect until an operator approves it.</div>
          )}
          {d.status === 'blocked' && (
            <div className="notice bad">This device is blocked: the manager refuses its credential until it is unblocked. Tasks for it wait in its queue.</div>
          )}
          {d.presence === 'unresponsive' && (
            <div className="notice" data-testid="unresponsive-notice">
              This device has sent nothing since {formatClock(d.lastSeenAt)} though its connection is still open: its agent may be frozen or stuck.
              What it shows below is its last report. Commands wait in its session; it is offline if the connection ends.
            </div>
          )}
          {d.presence === 'offline' && d.status === 'active' && (
            <div className="notice">This device is offline. Changes are queued and run when it reconnects (unless they time out first).</div>
          )}
          <DeviceFacts device={d} />
          <DeviceHistoryPanel deviceId={d.id} presence={d.presence} range={range} />
          <DeviceVms device={d} tasks={tasks.data ?? []} onTask={addTask} />
          <section className="panel">
            <div className="panel-head">
              <h2>Recent tasks</h2>
              <Link to={`/tasks?deviceId=${d.id}`}>All tasks of this device</Link>
            </div>
            <ErrorNote error={tasks.error} onRetry={tasks.reload} />
            {tasks.data && <TaskTable tasks={tasks.data} presence={d.presence} status={d.status} />}
          </section>
          {isAdmin && <DeviceEvents deviceId={d.id} reloadKey={`${actionsDone} ${tasks.data?.length ?? 0}`} />}
        </>
      )}
      {!d && device.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
