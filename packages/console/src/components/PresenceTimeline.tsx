import { useId } from 'react';
import type { PresenceInterval, PresenceSummary } from '@pallas/protocol';
import { formatLength, presenceInWords } from '@pallas/protocol/units';
import { formatClock } from '../lib/format.js';

/** A stretch of the timeline, in % of the range. */
interface Band { state: string; left: number; width: number; from: string; to: string | null }

function bandsOf(intervals: readonly PresenceInterval[], fromMs: number, toMs: number): Band[] {
  const span = Math.max(1, toMs - fromMs);
  return intervals.map((i) => {
    const start = Math.max(fromMs, Date.parse(i.from));
    const end = Math.min(toMs, i.to ? Date.parse(i.to) : toMs);
    return { state: i.state, left: ((start - fromMs) / span) * 100, width: (Math.max(0, end - start) / span) * 100, from: i.from, to: i.to };
  }).filter((b) => b.width > 0);
}

const STATES = ['online', 'unresponsive', 'offline'];

/**
 * A device's presence over the range as coloured bands (online, unresponsive, offline; blank
 * before the first change the manager knows of), with the summary in words beside it: the
 * same sentence as `pallas devices show`. Plain elements, no chart library.
 */
export function PresenceTimeline({ intervals, summary, from, to, rangeLabel, rangeSec }: {
  intervals: readonly PresenceInterval[]; summary: readonly PresenceSummary[]; from: string; to: string; rangeLabel: string; rangeSec: number;
}) {
  const id = useId();
  const fromMs = Date.parse(from);
  const toMs = Date.parse(to);
  const bands = bandsOf(intervals, fromMs, toMs);
  const when = (b: Band) => `${b.state} from ${formatClock(b.from)} ${b.to ? `to ${formatClock(b.to)}` : 'until now'}`
    + ` (${formatLength(((b.to ? Date.parse(b.to) : toMs) - Math.max(fromMs, Date.parse(b.from))) / 1000)})`;
  const words = presenceInWords([...summary], rangeSec);
  return (
    <figure className="chart presence-timeline" data-chart="presence">
      <h3 className="chart-title" id={`${id}-title`}>Presence, last {rangeLabel}</h3>
      <div className="timeline-track" role="img" aria-labelledby={`${id}-title`} aria-describedby={`${id}-summary`}>
        {bands.map((b) => (
          <span key={b.from} className={`timeline-band band-${b.state}`} data-state={b.state} title={when(b)}
            style={{ left: `${b.left}%`, width: `${b.width}%` }} />
        ))}
      </div>
      <div className="timeline-axis muted small" aria-hidden="true"><span>{formatClock(from)}</span><span>now</span></div>
      <figcaption className="chart-summary small" id={`${id}-summary`} data-testid="presence-summary">
        {words.charAt(0).toUpperCase() + words.slice(1)}.
        {/* The stretches themselves, for screen readers (the latest ten). */}
        <span className="visually-hidden"> {bands.slice(-10).map(when).join('; ')}.</span>
      </figcaption>
      <p className="chart-key small muted" aria-hidden="true">
        {STATES.map((s) => <span key={s}><span className={`key-swatch band-${s}`} /> {s}</span>)}
      </p>
    </figure>
  );
}
