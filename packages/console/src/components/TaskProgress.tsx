import type { DeviceStatus, Presence, Task } from '@pallas/protocol';
import { isFinal, taskStatusText } from '../lib/task-text.js';

/**
 * A task's progress bar with its status in words ("sent to device, waiting"). `errorShown`:
 * the page shows the error itself, so the status says only "Failed" (the error once).
 */
export function TaskProgress({ task, presence, status, errorShown }: { task: Task; presence?: Presence; status?: DeviceStatus; errorShown?: boolean }) {
  const pct = task.state === 'succeeded' ? 100 : task.progress.pct;
  const waiting = task.state === 'queued' || task.state === 'sent';
  return (
    <div className="task-progress">
      <div className={`progress-track task-${task.state}${waiting ? ' waiting' : ''}`} role="progressbar" aria-valuenow={pct} aria-valuemin={0} aria-valuemax={100}>
        {!isFinal(task) || task.state === 'succeeded' ? <div className="progress-fill" style={{ width: `${pct}%` }} /> : null}
      </div>
      <div className="task-status-text">{errorShown && task.state === 'failed' ? 'Failed' : taskStatusText(task, presence, status)}</div>
    </div>
  );
}
