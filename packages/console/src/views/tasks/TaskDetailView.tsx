import { useState } from 'react';
import type { Task } from '@pallas/protocol';
import { api, messageOf } from '../../api/client.js';
import { Link, navigate } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { TaskStateBadge } from '../../components/Badges.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { TaskProgress } from '../../components/TaskProgress.js';
import { pageTitle, useDocumentTitle } from '../../hooks/useDocumentTitle.js';
import { useResource } from '../../hooks/useResource.js';
import { formatDateTime } from '../../lib/format.js';
import { IdText } from '../../components/IdText.js';
import { describeTask, errorWords, isFinal, lateText, retryAdvice } from '../../lib/task-text.js';
import { useLiveEvents } from '../../live/LiveProvider.js';

/** The id of the artifact a task's operation names. */
function artifactIdOf(t: Task): string {
  const op = t.operation;
  if (op.kind === 'vm.deploy' && op.source.kind === 'artifact') return op.source.artifactId;
  return op.kind === 'device.patch' || op.kind === 'agent.update' ? op.artifactId : '';
}

function Timeline({ task }: { task: Task }) {
  const steps: Array<[string, string | null, string]> = [
    ['Created', task.createdAt, `by ${task.createdBy}`],
    ['Sent to device', task.sentAt, 'published on the device\'s command topic'],
    ['Started', task.startedAt, 'the agent journaled it and began'],
    ['Finished', task.finishedAt, task.state.replace('_', ' ')],
  ];
  return (
    <ol className="timeline">
      {steps.map(([label, at, note]) => (
        <li key={label} className={at ? 'done' : 'pending'}>
          <span className="timeline-label">{label}</span>
          <span className="timeline-time">{at ? formatDateTime(at) : 'not yet'}</span>
          {at && <span className="muted small">{note}</span>}
        </li>
      ))}
    </ol>
  );
}

/** One task: what it does, where it is, its timeline and error; cancel or retry it. */
export function TaskDetailView({ taskId }: { taskId: string }) {
  const canOperate = useCan('operator');
  const task = useResource((signal) => api.call('getTask', { params: { id: taskId }, signal }), [taskId]);
  const deviceId = task.data?.deviceId;
  const device = useResource(async () => (deviceId ? api.call('getDevice', { params: { id: deviceId } }) : undefined), [deviceId]);
  const [actionError, setActionError] = useState<string | null>(null);
  useDocumentTitle(task.data && pageTitle(describeTask(task.data), 'Tasks'));

  useLiveEvents((m) => {
    if (m.type === 'reset') task.reload();
    else if (m.type === 'task' && m.task.id === taskId) task.set(() => m.task);
    else if (m.type === 'device' && m.device.id === deviceId) device.set((d) => d && { ...d, presence: m.device.presence });
  });

  const act = async (action: () => Promise<Task>, after?: (t: Task) => void) => {
    setActionError(null);
    try {
      const result = await action();
      if (after) after(result);
      else task.set(() => result);
    } catch (err) {
      setActionError(messageOf(err));
    }
  };

  const t = task.data;
  const retry = t ? retryAdvice(t) : { offer: false };
  // The error shown once: the late result's when that is what the device said last.
  const shownError = t ? (t.state === 'timed_out' && t.lateResult?.error ? t.lateResult.error : t.error) : null;
  return (
    <div className="view">
      <nav className="breadcrumb"><Link to="/tasks">Tasks</Link> /</nav>
      <ErrorNote error={task.error} onRetry={task.reload} />
      {t && (
        <>
          <header className="view-head">
            <h1>{describeTask(t)}</h1>
            <TaskStateBadge state={t.state} late={t.state === 'timed_out' ? t.lateResult?.outcome : undefined} />
            <div className="spacer" />
            {canOperate && !isFinal(t) && !t.cancelRequested && (
              <button type="button" className="button" onClick={() => void act(() => api.call('cancelTask', { params: { id: t.id } }))}>Cancel task</button>
            )}
            {canOperate && retry.offer && (
              <button type="button" className="button primary" onClick={() => void act(() => api.call('retryTask', { params: { id: t.id } }), (n) => navigate(`/tasks/${n.id}`))}>Retry</button>
            )}
          </header>
          {actionError && <div className="error-note" role="alert">{actionError}</div>}
          <section className="panel">
            <TaskProgress task={t} errorShown={shownError !== null} {...(device.data ? { presence: device.data.presence, status: device.data.status } : {})} />
            {shownError && shownError.code !== 'timed_out' && (
              <div className="error-note task-error" role="status" data-error-code={shownError.code}>
                <p className="task-error-words">{errorWords(shownError).words}</p>
                <span className="small muted">code <code>{shownError.code}</code></span>
              </div>
            )}
            {t.lateResult && (
              <p className="muted" data-testid="late-result">
                {t.state === 'timed_out' ? `Timed out; ${lateText(t)}` : `A result arrived after the task was final: ${t.lateResult.outcome}`} ({formatDateTime(t.lateResult.at)}).
                {' '}It was recorded but changed nothing here{t.lateResult.outcome === 'succeeded' ? ': the device did the work, check its VMs' : ''}.
              </p>
            )}
            {canOperate && retry.why && <p className="muted small" data-testid="no-retry">{retry.why}</p>}
          </section>
          <div className="columns">
            <section className="panel">
              <h2>Timeline</h2>
              <Timeline task={t} />
            </section>
            <section className="panel">
              <h2>Details</h2>
              <dl className="facts">
                <div><dt>Device</dt><dd><Link to={`/devices/${t.deviceId}`}>{device.data?.name ?? t.deviceName ?? t.deviceId}</Link><IdText id={t.deviceId} /></dd></div>
                <div><dt>Operation</dt><dd className="mono">{t.kind}</dd></div>
                {t.vmId && <div><dt>VM</dt><dd>{t.vm?.name ?? t.vmName ?? ''}<IdText id={t.vmId} /></dd></div>}
                {t.artifactName !== undefined && <div><dt>Artifact</dt><dd>{t.artifactName} {t.artifactVersion}<IdText id={artifactIdOf(t)} /></dd></div>}
                <div><dt>Deadline</dt><dd>{formatDateTime(t.deadlineAt)}</dd></div>
                <div><dt>Attempt</dt><dd>{t.attempt}{t.retryOf && <> (retry of <Link to={`/tasks/${t.retryOf}`}>an earlier task</Link>)</>}</dd></div>
                <div><dt>Task id</dt><dd><IdText id={t.id} /></dd></div>
              </dl>
              <details>
                <summary>Request</summary>
                <pre className="code">{JSON.stringify(t.operation, null, 2)}</pre>
              </details>
            </section>
          </div>
        </>
      )}
      {!t && task.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
