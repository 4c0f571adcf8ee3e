import type { FleetBucket } from '@pallas/protocol';
import { api } from '../api/client.js';
import { Link, useLocation } from '../app/router.js';
import { ErrorNote } from '../components/ErrorNote.js';
import { RangeToggle } from '../components/RangeToggle.js';
import { useResource } from '../hooks/useResource.js';
import { useThrottled } from '../hooks/timing.js';
import { formatCount } from '../lib/format.js';
import { useLiveEvents } from '../live/LiveProvider.js';
import { rangeOf } from '../lib/series.js';
import { AttentionLists } from './overview/AttentionLists.js';
import { FleetCharts } from './overview/FleetCharts.js';

function Stat({ label, value, tone, to }: { label: string; value: number; tone?: string; to?: string }) {
  const body = (
    <>
      <span className="stat-value">{formatCount(value)}</span>
      <span className="stat-label">{label}</span>
    </>
  );
  return to
    ? <Link to={to} className={`stat ${tone ?? ''}`} data-stat={label}>{body}</Link>
    : <div className={`stat ${tone ?? ''}`} data-stat={label}>{body}</div>;
}

function Breakdown({ title, buckets, total, unknown }: { title: string; buckets: FleetBucket[]; total: number; unknown: string }) {
  return (
    <section className="panel">
      <h2>{title}</h2>
      {buckets.length === 0 ? <p className="muted">No devices yet.</p> : (
        <ul className="breakdown">
          {buckets.map((b) => (
            <li key={b.value ?? ''}>
              <span className="breakdown-label">{b.value ?? unknown}</span>
              <span className="breakdown-bar"><span style={{ width: `${total ? (b.count / total) * 100 : 0}%` }} /></span>
              <span className="breakdown-count">{formatCount(b.count)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * The fleet at a glance, kept current by the live stream (at most one reload a second); its
 * history over 1 h, 24 h or 7 d (`?range=`), and what needs attention.
 */
export function OverviewView() {
  const range = rangeOf(useLocation().query.get('range'));
  // The fleet summary has no pending count; the device list's total for status=pending is it.
  const summary = useResource(async (signal) => {
    const [fleet, pending] = await Promise.all([api.call('fleetSummary', { signal }), api.call('listDevices', { query: { status: 'pending', limit: 1 }, signal })]);
    return { ...fleet, pending: pending.total };
  }, []);
  const reloadSoon = useThrottled(summary.reload, 1000);
  useLiveEvents(reloadSoon);
  const s = summary.data;
  return (
    <div className="view">
      <header className="view-head">
        <h1>Overview</h1>
        <div className="spacer" />
        <RangeToggle label="Range of the charts" value={range} />
      </header>
      <ErrorNote error={summary.error} onRetry={summary.reload} />
      {s && (
        <>
          <section className="stats" aria-label="Devices">
            <Stat label="devices" value={s.devices.total} to="/devices" />
            <Stat label="online" value={s.devices.online} tone="good" to="/devices?presence=online" />
            <Stat label="unresponsive" value={s.devices.unresponsive} tone={s.devices.unresponsive > 0 ? 'warn' : ''} to="/devices?presence=unresponsive" />
            <Stat label="offline" value={s.devices.offline} tone={s.devices.offline > 0 ? 'warn' : ''} to="/devices?presence=offline" />
            <Stat label="pending approval" value={s.pending} tone={s.pending > 0 ? 'warn' : ''} to="/devices?status=pending" />
          </section>
          <section className="stats" aria-label="Tasks">
            <Stat label="tasks running" value={s.tasks.running} to="/tasks?state=running" />
            <Stat label="sent, waiting" value={s.tasks.sent} to="/tasks?state=sent" />
            <Stat label="queued" value={s.tasks.queued} to="/tasks?state=queued" />
            <Stat label="succeeded (24 h)" value={s.tasks.last24h.succeeded} tone="good" to="/tasks?state=succeeded" />
            <Stat label="failed (24 h)" value={s.tasks.last24h.failed + s.tasks.last24h.timedOut} tone={s.tasks.last24h.failed + s.tasks.last24h.timedOut > 0 ? 'bad' : ''} to="/tasks?state=failed" />
          </section>
          <FleetCharts range={range} />
          <AttentionLists />
          <div className="columns">
            <Breakdown title="By hypervisor" buckets={s.hypervisors} total={s.devices.total} unknown="not reported" />
            <Breakdown title="By agent version" buckets={s.agentVersions} total={s.devices.total} unknown="not reported" />
          </div>
        </>
      )}
      {!s && summary.loading && <p className="muted">Loading…</p>}
    </div>
  );
}
