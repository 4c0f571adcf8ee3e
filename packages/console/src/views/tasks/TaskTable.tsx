import type { DeviceStatus, Presence, Task } from '@pallas/protocol';
import { Link } from '../../app/router.js';
import { TaskStateBadge } from '../../components/Badges.js';
import { TaskProgress } from '../../components/TaskProgress.js';
import { formatRelative } from '../../lib/format.js';
import { describeTask } from '../../lib/task-text.js';

/** Tasks with their state and live progress; used by the tasks view and a device's page. */
export function TaskTable({ tasks, showDevice, presence, status, deviceNames = {} }: {
  tasks: Task[];
  showDevice?: boolean;
  presence?: Presence;
  status?: DeviceStatus;
  deviceNames?: Record<string, string>;
}) {
  if (tasks.length === 0) return <p className="empty">No tasks.</p>;
  return (
    <div className="table-wrap">
      <table className="table stack">
        <thead>
          <tr>
            <th>Task</th>
            {showDevice && <th className="secondary">Device</th>}
            <th>State</th>
            <th className="progress-col">Progress</th>
            <th className="secondary">Created</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.id} data-task-id={t.id} data-task-kind={t.kind} data-task-state={t.state}>
              <td><Link to={`/tasks/${t.id}`} className="row-link clip-name" title={describeTask(t)}>{describeTask(t)}</Link></td>
              {showDevice && <td className="secondary"><Link to={`/devices/${t.deviceId}`} className="clip-name" title={t.deviceId}>{t.deviceName ?? deviceNames[t.deviceId] ?? `${t.deviceId.slice(0, 8)}…`}</Link></td>}
              <td><TaskStateBadge state={t.state} late={t.state === 'timed_out' ? t.lateResult?.outcome : undefined} /></td>
              <td className="progress-col full"><TaskProgress task={t} {...(presence ? { presence } : {})} {...(status ? { status } : {})} /></td>
              <td className="secondary" title={t.createdAt}>{formatRelative(t.createdAt)} by {t.createdBy}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Puts a changed or new task into a newest-first list (task ids sort by creation time). */
export function upsertTask(list: Task[], task: Task, addIfNew: boolean, max = 50): Task[] {
  const at = list.findIndex((t) => t.id === task.id);
  if (at >= 0) return list.map((t, i) => (i === at ? task : t));
  if (!addIfNew) return list;
  return [task, ...list].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).slice(0, max);
}
