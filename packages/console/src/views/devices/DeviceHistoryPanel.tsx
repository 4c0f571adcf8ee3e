import { useEffect, useMemo, useRef } from 'react';
import type { DeviceHistory, DeviceHistoryPoint, Presence, Stat } from '@pallas/protocol';
import { formatGB, formatMiB } from '@pallas/protocol/units';
import { api } from '../../api/client.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { PresenceTimeline } from '../../components/PresenceTimeline.js';
import { RangeToggle } from '../../components/RangeToggle.js';
import { TimeSeriesChart, type ChartSeries } from '../../components/TimeSeriesChart.js';
import { useEvery } from '../../hooks/timing.js';
import { useResource } from '../../hooks/useResource.js';
import { RANGES, formatPct, onGrid, rangeFrom, stepGrid, statSentence, summarizeStat, type RangeKey } from '../../lib/series.js';

/** One quantity of the device's history: its average as a line in a band from its minimum to its maximum. */
interface Quantity { name: string; title: string; pick(p: DeviceHistoryPoint): Stat | undefined; format(v: number): string; max(h: DeviceHistory): number | undefined }

const QUANTITIES: Quantity[] = [
  { name: 'cpu', title: 'CPU', pick: (p) => p.cpuPct, format: formatPct, max: () => 100 },
  { name: 'memory', title: 'Memory used', pick: (p) => p.memoryUsedMB, format: formatMiB, max: (h) => h.points.findLast((p) => p.memoryTotalMB !== undefined)?.memoryTotalMB },
  { name: 'datastore', title: 'Datastore used', pick: (p) => p.datastoreUsedGB, format: formatGB, max: (h) => h.points.findLast((p) => p.datastoreCapacityGB !== undefined)?.datastoreCapacityGB },
];

function QuantityChart({ q, h, rangeLabel }: { q: Quantity; h: DeviceHistory; rangeLabel: string }) {
  const chart = useMemo(() => {
    const x = stepGrid(h.from, h.to, h.step);
    const on = (f: (s: Stat) => number) => onGrid(x, h.step, h.points, (p) => { const s = q.pick(p); return s && f(s); });
    const series: ChartSeries[] = [
      { label: 'average', color: '--accent', values: on((s) => s.avg) },
      { label: 'highest', color: '--accent', kind: 'edge', values: on((s) => s.max) },
      { label: 'lowest', color: '--accent', kind: 'edge', values: on((s) => s.min) },
    ];
    return { x, series, range: [Date.parse(h.from) / 1000, Date.parse(h.to) / 1000] as [number, number], summary: statSentence(q.title, rangeLabel, summarizeStat(h.points, q.pick), q.format) };
  }, [h, q, rangeLabel]);
  return (
    <TimeSeriesChart name={q.name} title={`${q.title}, last ${rangeLabel}`} formatY={q.format} yMax={q.max(h)}
      band={{ upper: 1, lower: 2, color: '--accent' }} height={160} {...chart} />
  );
}

/**
 * The device's history (docs/history.md): its presence as a timeline and in words, and its
 * CPU, memory and datastore use as charts, over 1 h, 24 h or 7 d (`?range=`). Read again once
 * a minute (buckets are written as each minute closes) and when its presence changes.
 */
export function DeviceHistoryPanel({ deviceId, presence, range }: { deviceId: string; presence: Presence; range: RangeKey }) {
  // The answer carries its range, so that titles and words match the data shown while another range loads.
  const h = useResource(async (signal) => ({
    spec: RANGES[range],
    history: await api.call('getDeviceHistory', { params: { id: deviceId }, query: { from: rangeFrom(range), step: RANGES[range].step }, signal }),
  }), [deviceId, range]);
  useEvery(h.reload, 60_000);
  const shownPresence = useRef(presence);
  useEffect(() => {
    if (shownPresence.current !== presence) h.reload();
    shownPresence.current = presence;
  }, [presence]);
  return (
    <section className="panel" aria-labelledby="device-history-title" data-testid="device-history">
      <div className="panel-head">
        <h2 id="device-history-title">History</h2>
        <RangeToggle label="Range of the history" value={range} />
      </div>
      <ErrorNote error={h.error} onRetry={h.reload} />
      {h.data && (
        <>
          <PresenceTimeline intervals={h.data.history.presence} summary={h.data.history.presenceSummary} from={h.data.history.from} to={h.data.history.to}
            rangeLabel={h.data.spec.label} rangeSec={h.data.spec.sec} />
          <div className="chart-grid">
            {QUANTITIES.map((q) => <QuantityChart key={q.name} q={q} h={h.data!.history} rangeLabel={h.data!.spec.label} />)}
          </div>
        </>
      )}
      {!h.data && h.loading && <p className="muted">Loading…</p>}
    </section>
  );
}
