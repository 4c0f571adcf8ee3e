import { useMemo } from 'react';
import { api } from '../../api/client.js';
import { Link } from '../../app/router.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { TimeSeriesChart } from '../../components/TimeSeriesChart.js';
import { useEvery } from '../../hooks/timing.js';
import { useResource } from '../../hooks/useResource.js';
import { useLiveEvents } from '../../live/LiveProvider.js';
import { formatCount } from '../../lib/format.js';
import {
  RANGES, presenceLines, presenceSentence, rangeFrom, stepGrid, taskBars, taskSentence, topFailureReasons, type RangeKey,
} from '../../lib/series.js';

/** The fleet job samples once a minute: reading more often shows nothing new. */
const RELOAD_MS = 60_000;

const count = (v: number) => formatCount(Math.round(v));

/** Devices online, unresponsive and offline over the range (the fleet's presence samples). */
function PresenceChart({ range }: { range: RangeKey }) {
  // The answer carries its range, so that titles and words match the data shown while another range loads.
  const h = useResource(async (signal) => ({ spec: RANGES[range], history: await api.call('fleetHistory', { query: { from: rangeFrom(range), step: RANGES[range].step, metric: 'presence' }, signal }) }), [range]);
  useEvery(h.reload, RELOAD_MS);
  useLiveEvents((m) => { if (m.type === 'reset') h.reload(); });
  const chart = useMemo(() => {
    if (!h.data) return undefined;
    const { spec, history } = h.data;
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
      range: [Date.parse(history.from) / 1000, Date.parse(history.to) / 1000] as [number, number],
      summary: presenceSentence(spec.label, history.series),
    };
  }, [h.data]);
  return (
    <section className="panel" aria-label="Devices over time">
      <ErrorNote error={h.error} onRetry={h.reload} />
      {chart && <TimeSeriesChart name="fleet-presence" formatY={count} integer {...chart} />}
      {!chart && h.loading && <p className="muted">Loading…</p>}
    </section>
  );
}

/** Tasks that ended, succeeded against failed, per bar; and why they failed. */
function TaskChart({ range }: { range: RangeKey }) {
  const h = useResource(async (signal) => ({ spec: RANGES[range], history: await api.call('fleetHistory', { query: { from: rangeFrom(range), step: RANGES[range].taskStep, metric: 'tasks' }, signal }) }), [range]);
  useEvery(h.reload, RELOAD_MS);
  useLiveEvents((m) => { if (m.type === 'reset') h.reload(); });
  const chart = useMemo(() => {
    if (!h.data) return undefined;
    const { spec, history } = h.data;
    const bars = taskBars(history.series, history.from, history.to, spec.taskBar);
    return {
      spec,
      x: bars.x,
      series: [
        { label: 'succeeded', color: '--good', kind: 'bars' as const, values: bars.succeeded },
        { label: 'failed or timed out', color: '--bad', kind: 'bars' as const, values: bars.failed },
      ],
      range: [Date.parse(history.from) / 1000, Date.parse(history.to) / 1000] as [number, number],
      summary: taskSentence(spec, bars),
      reasons: topFailureReasons(history.series),
    };
  }, [h.data]);
  return (
    <section className="panel" aria-label="Task outcomes over time">
      <ErrorNote error={h.error} onRetry={h.reload} />
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
      {!chart && h.loading && <p className="muted">Loading…</p>}
    </section>
  );
}

/** The overview's charts over one range. */
export function FleetCharts({ range }: { range: RangeKey }) {
  return (
    <div className="columns chart-columns">
      <PresenceChart range={range} />
      <TaskChart range={range} />
    </div>
  );
}
