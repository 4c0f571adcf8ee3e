import { useRef, useState } from 'react';
import type { PageOf, Rollout, RolloutDevice, RolloutDeviceState } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { Link } from '../../app/router.js';
import { useCan } from '../../auth/AuthProvider.js';
import { Dialog } from '../../components/Dialog.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Field } from '../../components/Field.js';
import { pageTitle, useDocumentTitle } from '../../hooks/useDocumentTitle.js';
import { useResource } from '../../hooks/useResource.js';
import { formatDateTime } from '../../lib/format.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { ProgressChart, RolloutBar, RolloutStateBadge, type Sample } from './RolloutParts.js';

const OUTCOMES: RolloutDeviceState[] = ['pending', 'active', 'verifying', 'succeeded', 'failed', 'skipped'];
type Action = 'pause' | 'resume' | 'abort';
const ROUTE = { pause: 'pauseRollout', resume: 'resumeRollout', abort: 'abortRollout' } as const;

function ActionDialog({ rollout, action, onDone, onClose }: { rollout: Rollout; action: Action; onDone(r: Rollout): void; onClose(): void }) {
  const [reason, setReason] = useState('');
  const text = {
    pause: 'No new device gets the operation; tasks already sent finish.',
    resume: 'The rollout goes on; the error threshold counts again from now.',
    abort: 'Devices without a task are skipped and queued tasks cancelled; tasks already on devices finish. This cannot be undone.',
  }[action];
  return (
    <Dialog title={`${action[0]!.toUpperCase()}${action.slice(1)} ${rollout.name}?`} submitLabel={`${action[0]!.toUpperCase()}${action.slice(1)} rollout`} danger={action === 'abort'} onClose={onClose}
      onSubmit={async () => onDone(await api.call(ROUTE[action], { params: { id: rollout.id }, body: reason.trim() ? { reason: reason.trim() } : {} }))}>
      <p>{text}</p>
      <Field label="Why (kept in the audit log)" name="rollout-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
    </Dialog>
  );
}

/** One rollout: state and actions, per-wave progress, a chart over time, failures by reason, and its devices by outcome. */
export function RolloutDetailView({ rolloutId }: { rolloutId: string }) {
  const operator = useCan('operator');
  const rollout = useResource((signal) => api.call('getRollout', { params: { id: rolloutId }, signal }), [rolloutId]);
  const [outcome, setOutcome] = useState<RolloutDeviceState | ''>('');
  const devices = useResource<PageOf<RolloutDevice>>((signal) => api.call('listRolloutDevices', { params: { id: rolloutId }, query: { limit: 1000, ...(outcome ? { state: outcome } : {}) }, signal }), [rolloutId, outcome]);
  const failed = useResource<PageOf<RolloutDevice>>((signal) => api.call('listRolloutDevices', { params: { id: rolloutId }, query: { limit: 1000, state: 'failed' }, signal }), [rolloutId]);
  const [action, setAction] = useState<Action | null>(null);
  const samples = useRef<Sample[]>([]);
  const r = rollout.data;
  useDocumentTitle(r && pageTitle(r.name, 'Rollouts'));
  if (r && (samples.current.length === 0 || samples.current.at(-1)!.succeeded !== r.counts.succeeded || samples.current.at(-1)!.failed !== r.counts.failed || samples.current.at(-1)!.pending !== r.counts.pending)) {
    samples.current.push({ at: Date.now(), succeeded: r.counts.succeeded, failed: r.counts.failed, pending: r.counts.pending + r.counts.active + r.counts.verifying });
  }

  useLiveEvents((m) => {
    if (m.type === 'reset') {
      rollout.reload();
      devices.reload();
      return;
    }
    if (m.type !== 'rollout' || m.rollout.id !== rolloutId) return;
    const before = rollout.data?.counts;
    rollout.set(() => m.rollout);
    if (!before || before.failed !== m.rollout.counts.failed) failed.reload();
    devices.reload();
  });

  const reasons = new Map<string, number>();
  for (const d of failed.data?.items ?? []) reasons.set(d.error?.code ?? 'unknown', (reasons.get(d.error?.code ?? 'unknown') ?? 0) + 1);

  return (
    <div className="view">
      <ErrorNote error={rollout.error} onRetry={rollout.reload} />
      {r && (
        <>
          <header className="view-head">
            <h1 data-testid="rollout-title">{r.name}</h1>
            <RolloutStateBadge rollout={r} />
            <div className="spacer" />
            {operator && r.state === 'running' && <button type="button" className="button" onClick={() => setAction('pause')}>Pause</button>}
            {operator && r.state === 'paused' && <button type="button" className="button primary" onClick={() => setAction('resume')}>Resume</button>}
            {operator && (r.state === 'running' || r.state === 'paused') && <button type="button" className="button danger-text" onClick={() => setAction('abort')}>Abort</button>}
          </header>
          <p className="muted">
            <span className="mono">{r.operation.kind}</span> to {r.target.groupId ? <>group <span className="mono">{r.target.groupId}</span></> : r.target.tag ? <>tag <span className="mono">{r.target.tag}</span></> : `${r.target.deviceCount} devices`}
            {' '}· wave {r.currentWave} of {r.waves.length} · started {formatDateTime(r.createdAt)} by {r.createdBy} · deadline {formatDateTime(r.deadlineAt)}
          </p>
          <section className="panel" aria-label="Waves">
            <h2>Waves</h2>
            <div className="table-wrap">
              <table className="table">
                <thead><tr><th>Wave</th><th>Size</th><th>Progress</th><th>Gate</th></tr></thead>
                <tbody>
                  {r.waves.map((w) => (
                    <tr key={w.wave} data-wave={w.wave} className={w.wave === r.currentWave ? 'current' : ''}>
                      <td>{w.wave}</td>
                      <td>{w.size}</td>
                      <td><RolloutBar counts={w.counts} /></td>
                      <td>{w.gateMetAt ? 'met' : w.startedAt ? 'open' : 'not started'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          <section className="panel" aria-label="Progress over time">
            <h2>Progress</h2>
            <RolloutBar counts={r.counts} />
            <ProgressChart samples={samples.current} total={r.counts.total} />
          </section>
          {reasons.size > 0 && (
            <section className="panel" aria-label="Failures by reason">
              <h2>Failures by reason</h2>
              <ul data-testid="failure-reasons">{[...reasons].sort((a, b) => b[1] - a[1]).map(([code, n]) => <li key={code}><span className="mono">{code}</span>: {n}</li>)}</ul>
            </section>
          )}
          <section className="panel" aria-label="Devices">
            <header className="view-head">
              <h2>Devices</h2>
              <div className="spacer" />
              <select aria-label="Outcome" name="rollout-outcome" value={outcome} onChange={(e) => setOutcome(e.target.value as RolloutDeviceState | '')}>
                <option value="">Any outcome</option>
                {OUTCOMES.map((o) => <option key={o} value={o}>{o}</option>)}
              </select>
            </header>
            <ErrorNote error={devices.error} onRetry={devices.reload} />
            {devices.data && (
              <div className="table-wrap">
                <table className="table">
                  <thead><tr><th>Device</th><th>Wave</th><th>Outcome</th><th className="secondary">Task</th><th className="secondary">Error</th></tr></thead>
                  <tbody>
                    {devices.data.items.map((d) => (
                      <tr key={d.deviceId} data-rollout-device={d.name} data-outcome={d.state}>
                        <td><Link to={`/devices/${d.deviceId}`}>{d.name || d.deviceId}</Link></td>
                        <td>{d.wave}</td>
                        <td><span className={`badge ${d.state === 'succeeded' ? 'good' : d.state === 'failed' ? 'bad' : d.state === 'pending' ? '' : 'warn'}`}>{d.state}</span></td>
                        <td className="secondary">{d.taskId ? <Link className="mono" to={`/tasks/${d.taskId}`}>{d.taskId.slice(0, 12)}…</Link> : '-'}</td>
                        <td className="secondary">{d.error ? `${d.error.code}: ${d.error.message}` : ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
          {action && <ActionDialog rollout={r} action={action} onClose={() => setAction(null)} onDone={(x) => rollout.set(() => x)} />}
        </>
      )}
    </div>
  );
}
