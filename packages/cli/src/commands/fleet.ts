/** `pallas fleet`: the fleet's counts now and its trends over the last day (docs/history.md). */
import type { Command } from 'commander';
import type { FleetHistory, FleetSummary } from '@pallas/protocol';
import type { Io } from '../io.js';
import { formatFields, formatTable } from '../output/table.js';
import { onGrid, sparkline } from '../output/history.js';
import { withContext } from './common.js';

const HOUR_MS = 3600_000;

export function registerFleet(program: Command, io: Io): void {
  program
    .command('fleet')
    .description("show the fleet's counts now and its trends over the last 24 hours")
    .action(
      withContext(io, async (ctx) => {
        const client = await ctx.client();
        // Whole hours, so each point is one hour of the chart.
        const to = Math.ceil(ctx.io.now() / HOUR_MS) * HOUR_MS;
        const from = to - 24 * HOUR_MS;
        const [summary, history] = await Promise.all([
          client.call('fleetSummary', {}),
          client.call('fleetHistory', { query: { from: new Date(from).toISOString(), to: new Date(to).toISOString(), step: 3600 } }),
        ]);
        ctx.emit({ summary, history }, () => fleetText(summary, history, from));
      }),
    );
}

function fleetText(s: FleetSummary, h: FleetHistory, fromMs: number): string {
  const online = h.series.find((x) => x.metric === 'presence' && x.label === 'online');
  const hourly = onGrid(online, fromMs, h.step, 24, (p) => p.avg);
  const seen = hourly.filter((v): v is number => v !== null);
  const first = seen[0];
  const tasks = h.series.filter((x) => x.metric === 'tasks');
  const ended = (state: string) => tasks.filter((x) => x.label.startsWith(`${state}/`)).reduce((n, x) => n + x.points.reduce((m, p) => m + p.sum, 0), 0);
  const failures = tasks
    .filter((x) => !x.label.startsWith('succeeded/'))
    .map((x) => ({ label: x.label, count: x.points.reduce((m, p) => m + p.sum, 0) }))
    .sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  const failedPerHour = onGrid(undefined, fromMs, h.step, 24, () => 0).map((_, i) =>
    tasks.filter((x) => !x.label.startsWith('succeeded/')).reduce((n, x) => n + (onGrid(x, fromMs, h.step, 24, (p) => p.sum)[i] ?? 0), 0));
  const enrolled = h.series.filter((x) => x.metric === 'enrollments').reduce((n, x) => n + x.points.reduce((m, p) => m + p.sum, 0), 0);
  const trend = first === undefined ? 'no history yet' : `${sparkline(hourly)}  (${Math.round(Math.min(...seen))}–${Math.round(Math.max(...seen))}; ${signed(s.devices.online - Math.round(first))} since 24 h ago)`;
  const lines = [
    formatFields([
      ['Devices', `${s.devices.total} total: ${s.devices.online} online, ${s.devices.offline} not online`],
      ['Online, 24 h', trend],
      ['Tasks now', `${s.tasks.queued} queued, ${s.tasks.sent} sent, ${s.tasks.running} running`],
      ['Tasks, 24 h', `${ended('succeeded')} succeeded, ${ended('failed')} failed, ${ended('timed_out')} timed out, ${ended('cancelled')} cancelled`],
      ['Failed per hour', failures.length === 0 ? 'none' : sparkline(failedPerHour)],
      ['Enrolled, 24 h', String(enrolled)],
    ]),
  ];
  if (failures.length > 0) {
    lines.push('', 'Top failure reasons (24 h):');
    lines.push(formatTable(['OUTCOME', 'KIND', 'REASON', 'TASKS'], failures.slice(0, 5).map((f) => {
      const [outcome, kind, reason] = f.label.split('/');
      return [outcome ?? '', kind ?? '', reason || '-', String(f.count)];
    })).split('\n').map((l) => `  ${l}`).join('\n'));
  }
  return lines.join('\n');
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}
