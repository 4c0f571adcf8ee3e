import type { Device, Task } from '@pallas/protocol';
import { devicesApi, tasksApi } from '../../api/endpoints.js';
import { Link } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { PresenceBadge } from '../../components/Badges.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { useResource } from '../../hooks/useResource.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { TaskTable, upsertTask } from '../tasks/TaskTable.js';
import { DeviceActions } from './DeviceActions.js';
import { DeviceFacts } from './DeviceFacts.js';
import { DeviceVms } from './DeviceVms.js';

const RECENT_TASKS = 20;

/** One device: host, resources, VMs and its recent tasks, all kept live by the event stream. */
export function DeviceDetailView({ deviceId }: { deviceId: string }) {
  const canOperate = useCan('operator');
  const device = useResource(() => devicesApi.get(deviceId), [deviceId]);
  const tasks = useResource(async (signal) => (await tasksApi.list({ deviceId, limit: RECENT_TASKS }, signal)).items, [deviceId]);

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
      if (m.device.removed) device.reload(); // shows "not found"
      // A device that (re)connects may have new facts; read them again.
      else device.set((d) => d && { ...d, presence: m.device.presence, lastSeenAt: m.device.lastSeenAt });
      if (m.device.presence === 'online') device.reload();
    }
  });

  const d: Device | undefined = device.data;
  return (
    <div className="view">
      <nav className="breadcrumb"><Link to="/devices">Devices</Link> /</nav>
      <ErrorNote error={device.error} onRetry={device.reload} />
      {d && (
        <>
          <header className="view-head">
            <h1 data-testid="device-title">{d.name}</h1>
            <PresenceBadge presence={d.presence} />
            {d.tags.map((t) => <span key={t} className="tag">{t}</span>)}
            <div className="spacer" />
            {canOperate && <DeviceActions device={d} onChanged={(changed) => device.set(() => changed)} />}
          </header>
          {d.presence === 'offline' && (
            <div className="notice">This device is offline. Changes are queued and run when it reconnects (unless they time out first).</div>
          )}
          <DeviceFacts device={d} />
          <DeviceVms device={d} tasks={tasks.data ?? []} onTask={addTask} />
          <section className="panel">
            <div className="panel-head">
              <h2>Recent tasks</h2>
              <Link to={`/tasks?deviceId=${d.id}`}>All tasks of this device</Link>
            </div>
            <ErrorNote error={tasks.error} onRetry={tasks.reload} />
            {tasks.data && <TaskTable tasks={tasks.data} presence={d.presence} />}
          </section>
        </>
      )}
      {!d && device.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
