import { useMemo } from 'react';
import type { FleetHistory } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { Link } from '../../app/router.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { TimeSeriesChart } from '../../components/TimeSeriesChart.js';
import { useEvery } from '../../hooks/timing.js';
import { useResource, type Resource } from '../../hooks/useResource.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { formatCount } from '../../lib/format.js';
import {
  RANGES, barRange, enrollmentBars, enrollmentSentence, presenceLines, presenceSentence, rangeFrom, stepGrid, taskBars, taskSentence, topFailureReasons,
  type RangeKey, type RangeSpec,
} from '../../lib/series.js';

/** The fleet job samples once a minute: reading more often shows nothing new. */
const RELOAD_MS = 60_000;

const count = (v: number) => formatCount(Math.round(v));

/** A fleet series over a range, read again once a minute and after a stream `reset`. */
type Loaded = Resource<{ spec: RangeSpec; history: FleetHistory }>;
function useFleetHistory(range: RangeKey, metric: string, step: (spec: RangeSpec) => number): Loaded {
  // The answer carries its range, so that titles and words match the data shown while another range loads.
  const h = useResource(async (signal) => ({
    spec: RANGES[range],
    history: await api.call('fleetHistory', { query: { from: rangeFrom(range), step: step(RANGES[range]), metric }, signal }),
  }), [range]);
  useEvery(h.reload, RELOAD_MS);
  useLiveEvents((m) => { if (m.type === 'reset') h.reload(); });
  return h;
}

const secondsOf = (h: FleetHistory): [number, number] => [Date.parse(h.from) / 1000, Date.parse(h.to) / 1000];

/** Devices online, unresponsive and offline over the range (the fleet's presence samples); enrollments under it. */
function PresencePanel({ presence, counts }: { presence: Loaded; counts: Loaded }) {
  const chart = useMemo(() => {
    if (!presence.data) return undefined;
    const { spec, history } = presence.data;
    const grid = stepGrid(history.from, history.to, history.step);
    const lines = presenceLines(history.series, grid, history.step);
    return {
      title: `Devices by presence, last ${spec.label}`,
      x: grid,
      series: [
        { label: 'online', color: '--good', values: lines.online },
        { label: 'unresponsive', color: '--warn', values: lines.unresponsive },
        { label: 'offline', color: '--bad', values: lines.offline },
      ],
      range: secondsOf(history),
      summary: presenceSentence(spec.label, history.series),
    };
  }, [presence.data]);
  const enrolled = useMemo(() => {
    if (!counts.data) return undefined;
    const { spec, history } = counts.data;
    const bars = enrollmentBars(history.series, history.from, history.to, spec.taskBar);
    return {
      title: `Enrollments ${spec.taskBarLabel}, last ${spec.label}`,
      x: bars.x,
      series: [{ label: 'enrolled', color: '--accent', kind: 'bars' as const, values: bars.values }],
      range: barRange(bars.x, spec.taskBar),
      summary: enrollmentSentence(spec, bars),
    };
  }, [counts.data]);
  return (
    <section className="panel" aria-label="Devices over time">
      <ErrorNote error={presence.error} onRetry={presence.reload} />
      {chart && <TimeSeriesChart name="fleet-presence" formatY={count} integer {...chart} />}
      {!chart && presence.loading && <p className="muted">Loading…</p>}
      {enrolled && <TimeSeriesChart name="fleet-enrollments" formatY={count} integer height={110} {...enrolled} />}
    </section>
  );
}

/** Tasks that ended, succeeded against failed, per bar; and why they failed. */
function TaskPanel({ counts }: { counts: Loaded }) {
  const chart = useMemo(() => {
    if (!counts.data) return undefined;
    const { spec, history } = counts.data;
    const bars = taskBars(history.series, history.from, history.to, spec.taskBar);
    return {
      spec,
      x: bars.x,
      series: [
        { label: 'succeeded', color: '--good', kind: 'bars' as const, values: bars.succeeded },
        { label: 'failed or timed out', color: '--bad', kind: 'bars' as const, values: bars.failed },
      ],
      range: barRange(bars.x, spec.taskBar),
      summary: taskSentence(spec, bars),
      reasons: topFailureReasons(history.series),
    };
  }, [counts.data]);
  return (
    <section className="panel" aria-label="Task outcomes over time">
      <ErrorNote error={counts.error} onRetry={counts.reload} />
      {chart && (
        <>
          <TimeSeriesChart name="fleet-tasks" integer title={`Tasks ended ${chart.spec.taskBarLabel}, last ${chart.spec.label}`} formatY={count}
            x={chart.x} series={chart.series} range={chart.range} summary={chart.summary} />
          <h3 className="chart-title">Top failure reasons</h3>
          {chart.reasons.length === 0 ? <p className="muted small" data-testid="no-failures">No task failed in the last {chart.spec.label}.</p> : (
            <ol className="reason-list" data-testid="failure-reasons">
              {chart.reasons.map((r) => (
                <li key={`${r.code}/${r.kind}`} data-code={r.code}>
                  <span className="reason-count">{formatCount(r.count)}</span>
                  <span>
                    <code>{r.code}</code> <span className="muted">in {r.kind}</span>
                    {r.words && <span className="block muted small">{r.words}</span>}
                  </span>
                </li>
              ))}
            </ol>
          )}
          <Link to="/tasks?state=failed" className="small">Failed tasks</Link>
        </>
      )}
      {!chart && counts.loading && <p className="muted">Loading…</p>}
    </section>
  );
}

/**
 * The overview's charts over one range: two requests, the presence gauges and the counts
 * (tasks and enrollments at one step, added up per bar here).
 */
export function FleetCharts({ range }: { range: RangeKey }) {
  const presence = useFleetHistory(range, 'presence', (spec) => spec.step);
  const counts = useFleetHistory(range, 'tasks,enrollments', (spec) => spec.taskStep);
  return (
    <div className="columns chart-columns">
      <PresencePanel presence={presence} counts={counts} />
      <TaskPanel counts={counts} />
    </div>
  );
}
