import type { Rollout, RolloutCounts } from '@pallas/protocol';

/** Succeeded, failed, in progress and pending as one stacked bar, with the numbers beside it. */
export function RolloutBar({ counts }: { counts: RolloutCounts }) {
  const total = Math.max(1, counts.total);
  const part = (n: number, cls: string, label: string) => n > 0 && <span className={`rb-${cls}`} style={{ width: `${(n / total) * 100}%` }} title={`${n} ${label}`} />;
  return (
    <span className="rollout-bar-wrap">
      <span className="rollout-bar" role="img" aria-label={`${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.active + counts.verifying} in progress, ${counts.pending} pending of ${counts.total}`}>
        {part(counts.succeeded, 'ok', 'succeeded')}
        {part(counts.failed, 'failed', 'failed')}
        {part(counts.active + counts.verifying, 'active', 'in progress')}
        {part(counts.skipped, 'skipped', 'skipped')}
      </span>
      <span className="muted small">{counts.succeeded}/{counts.total}{counts.failed > 0 ? `, ${counts.failed} failed` : ''}</span>
    </span>
  );
}

export function RolloutStateBadge({ rollout }: { rollout: Rollout }) {
  const tone = rollout.state === 'completed' ? 'good' : rollout.state === 'paused' ? 'warn' : rollout.state === 'aborted' ? 'bad' : '';
  return <span className={`badge ${tone}`} data-testid="rollout-state">{rollout.state}{rollout.reason ? ` · ${rollout.reason.replace(/_/g, ' ')}` : ''}</span>;
}

export interface Sample { at: number; succeeded: number; failed: number; pending: number }

/** Succeeded / failed / pending over time, as three lines (samples taken from live events since the page opened). */
export function ProgressChart({ samples, total }: { samples: Sample[]; total: number }) {
  if (samples.length < 2) return <p className="muted">The chart fills in as the rollout moves.</p>;
  const w = 600;
  const h = 140;
  const t0 = samples[0]!.at;
  const span = Math.max(1, samples.at(-1)!.at - t0);
  const y = (n: number) => h - (n / Math.max(1, total)) * (h - 10) - 5;
  const line = (key: 'succeeded' | 'failed' | 'pending') => samples.map((s) => `${(((s.at - t0) / span) * (w - 10) + 5).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
  return (
    <figure className="rollout-chart">
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label="Succeeded, failed and pending devices over time">
        <polyline className="line-ok" points={line('succeeded')} />
        <polyline className="line-failed" points={line('failed')} />
        <polyline className="line-pending" points={line('pending')} />
      </svg>
      <figcaption className="muted small"><span className="key-ok">succeeded</span> · <span className="key-failed">failed</span> · <span className="key-pending">pending</span></figcaption>
    </figure>
  );
}
