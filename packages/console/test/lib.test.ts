/**
 * The console's pure modules, run in Node: the VM form's checks, the agent command (which must
 * equal the CLI's), the task wording, name limits and what the live region says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceHistoryPoint, FleetSeries, Task } from '@pallas/protocol';
import { agentCommand } from '../src/lib/agent-command.js';
import { summarize, taskAnnouncement } from '../src/lib/announce.js';
import { lengthError } from '../src/lib/limits.js';
import { errorWords, retryAdvice, taskStatusText } from '../src/lib/task-text.js';
import { validateVm } from '../src/lib/vm-form.js';
import { RANGES, barRange, enrollmentBars, enrollmentSentence, onGrid, presenceLines, presenceSentence, rangeOf, statSentence, stepGrid, summarizeStat, taskBars, taskSentence, topFailureReasons } from '../src/lib/series.js';

describe('console: VM form', () => {
  it('names every field that is out of bounds', () => {
    assert.deepEqual(validateVm({ name: 'web-1', vcpus: '2', memoryMB: '2048', diskGB: '20' }), {});
    const errors = validateVm({ name: ' bad', vcpus: '0', memoryMB: '32', diskGB: '0' });
    assert.deepEqual(Object.keys(errors).sort(), ['diskGB', 'memoryMB', 'name', 'vcpus']);
    assert.match(errors.vcpus!, /between 1 and 128/);
  });
});

describe('console: wording', () => {
  it('prints the agent command the CLI prints', () => {
    assert.equal(agentCommand('http://10.0.0.5:8080', 'pet_abc-DEF_1'),
      'npx pallas-agent --manager http://10.0.0.5:8080 --token pet_abc-DEF_1 --state-dir /var/lib/pallas-agent');
    assert.equal(agentCommand('http://x', "it's"), "npx pallas-agent --manager http://x --token 'it'\\''s' --state-dir /var/lib/pallas-agent");
  });

  it('says where a waiting task is, and why', () => {
    const task = { state: 'queued', cancelRequested: false, progress: { pct: 0, message: null }, error: null } as unknown as Task;
    assert.equal(taskStatusText(task, 'offline'), 'Queued — device offline, will run when it reconnects');
    assert.equal(taskStatusText(task, 'offline', 'blocked'), 'Queued — device blocked, runs once it is unblocked and reconnects');
    assert.equal(taskStatusText(task, 'offline', 'pending'), 'Queued — device waiting for approval, runs once it is approved and connects');
    assert.equal(taskStatusText({ ...task, state: 'sent' }), 'Sent to device, waiting for it to start');
    assert.equal(taskStatusText({ ...task, state: 'running', cancelRequested: true }), 'Cancel requested — waiting for the device to answer');
  });
});

describe('console: why a task ended, and whether to retry (issue #18 point 8)', () => {
  const ended = (over: Partial<Task>) => ({ state: 'failed', cancelRequested: false, progress: { pct: 0, message: null }, error: null, lateResult: null, ...over }) as unknown as Task;

  it('offers Retry only when the code says it can help', () => {
    assert.equal(retryAdvice(ended({ error: { code: 'host_error', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ error: { code: 'unavailable', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ error: { code: 'some_future_code', message: 'x' } })).offer, true);
    assert.equal(retryAdvice(ended({ state: 'timed_out' })).offer, true);
    const notFound = retryAdvice(ended({ error: { code: 'not_found', message: 'x' } }));
    assert.equal(notFound.offer, false);
    assert.match(notFound.why!, /fail the same way/);
    assert.equal(retryAdvice(ended({ error: { code: 'invalid_spec', message: 'x' } })).offer, false);
    assert.equal(retryAdvice(ended({ state: 'succeeded' })).offer, false);
    assert.equal(retryAdvice(ended({ state: 'timed_out', lateResult: { outcome: 'succeeded', at: '2026-01-01T00:00:00Z' } })).offer, false);
  });

  it('says a late result plainly, and an error in words', () => {
    const late = ended({ state: 'timed_out', lateResult: { outcome: 'succeeded', at: '2026-01-01T00:00:00Z' } });
    assert.equal(taskStatusText(late), 'Timed out; the device finished it later: succeeded');
    assert.deepEqual(errorWords({ code: 'no_space', message: 'datastore1 has 2 GB free' }), {
      words: 'Not enough datastore space or free memory on the device: datastore1 has 2 GB free', code: 'no_space',
    });
    assert.equal(errorWords({ code: 'brand_new', message: 'it broke' }).words, 'it broke');
  });
});

describe('console: name limits', () => {
  it('says how long a name is and the limit, and never cuts it', () => {
    assert.equal(lengthError('n'.repeat(300), 80), 'Too long: 300 characters; the limit is 80');
    assert.equal(lengthError('n'.repeat(80), 80), undefined);
    assert.equal(validateVm({ name: 'n'.repeat(81), vcpus: '1', memoryMB: '64', diskGB: '1' }).name, 'Too long: 81 characters; the limit is 80');
  });
});

describe('console: live announcements', () => {
  const task = (id: string, state: Task['state'], pct = 0) => ({
    id, state, progress: { pct, message: null }, error: null, vm: null,
    operation: { kind: 'vm.create', spec: { name: `vm-${id}`, vcpus: 1, memoryMB: 64, diskGB: 1 } },
  }) as unknown as Task;

  it('says a task\'s state changes and its progress in quarters, nothing in between', () => {
    const first = taskAnnouncement(task('a', 'running', 10), undefined)!;
    assert.equal(first.text, 'Create VM vm-a: running.');
    assert.equal(taskAnnouncement(task('a', 'running', 20), first.memory), null);
    const half = taskAnnouncement(task('a', 'running', 55), first.memory)!;
    assert.equal(half.text, 'Create VM vm-a: 50 %.');
    assert.equal(taskAnnouncement(task('a', 'succeeded', 100), half.memory)!.text, 'Create VM vm-a: succeeded.');
  });

  it('says one task once per sentence, and a burst as counts', () => {
    const said = (t: Task) => ({ kind: 'task' as const, task: t, text: taskAnnouncement(t, undefined)!.text });
    assert.equal(summarize([said(task('a', 'queued')), said(task('a', 'running')), said(task('a', 'succeeded'))]), 'Create VM vm-a: succeeded.');
    const burst = ['a', 'b', 'c', 'd'].map((id, i) => said(task(id, i === 0 ? 'failed' : 'succeeded')));
    assert.equal(summarize(burst), '4 of your tasks changed: 1 failed, 3 succeeded.');
    const offline = Array.from({ length: 12 }, (_, i) => ({ kind: 'offline' as const, deviceId: `d${i}` }));
    assert.equal(summarize(offline), '12 devices went offline.');
    assert.equal(summarize([{ kind: 'offline', deviceId: 'd1', name: 'edge-1' }]), 'Device edge-1 went offline.');
  });
});

describe('console: history series', () => {
  const clock = (iso: string) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
  const now = Date.parse('2026-03-01T12:00:00Z');

  it('lays sparse points on a grid of steps aligned as the manager aligns them: a step without a point is a gap', () => {
    const grid = stepGrid('2026-03-01T10:02:30Z', '2026-03-01T10:07:00Z', 60);
    assert.deepEqual(grid.map((t) => new Date(t * 1000).toISOString().slice(11, 16)), ['10:02', '10:03', '10:04', '10:05', '10:06']);
    const points = [{ at: '2026-03-01T10:03:00.000Z', v: 5 }, { at: '2026-03-01T10:05:00.000Z', v: 7 }, { at: '2026-03-01T10:06:00.000Z' }];
    assert.deepEqual(onGrid(grid, 60, points, (p) => ('v' in p ? p.v : undefined)), [null, 5, null, 7, null]);
    assert.equal(rangeOf('7d'), '7d');
    assert.equal(rangeOf('toString'), '24h', 'not a key of the object');
    assert.equal(rangeOf(null), '24h');
  });

  it('says a device quantity as its report-weighted mean and its peak with the time of the peak', () => {
    const p = (at: string, samples: number, min: number, avg: number, max: number): DeviceHistoryPoint => ({ at, samples, cpuPct: { min, avg, max } });
    const points = [p('2026-03-01T10:00:00.000Z', 1, 10, 10, 10), p('2026-03-01T10:05:00.000Z', 3, 20, 30, 87), { at: '2026-03-01T10:10:00.000Z', samples: 2 }];
    const s = summarizeStat(points, (x) => x.cpuPct);
    assert.deepEqual(s, { avg: 25, peak: 87, peakAt: '2026-03-01T10:05:00.000Z', reports: 4 });
    assert.equal(statSentence('CPU', '24 h', s, (v) => `${Math.round(v)} %`, now), `CPU over 24 h: avg 25 %, peak 87 % at ${clock('2026-03-01T10:05:00Z')} (4 reports).`);
    assert.equal(statSentence('CPU', '24 h', summarizeStat([], (x) => x.cpuPct), String, now), 'CPU over 24 h: no reports in this range yet.');
  });

  it('adds task counts up per bar, succeeded against failed or timed out, and ranks the failure reasons', () => {
    const at = (hhmm: string) => `2026-03-01T${hhmm}:00.000Z`;
    const pt = (hhmm: string, n: number) => ({ at: at(hhmm), min: n, avg: n, max: n, sum: n });
    const series: FleetSeries[] = [
      { metric: 'tasks', label: 'succeeded/vm.power/', points: [pt('10:01', 2), pt('11:30', 1)] },
      { metric: 'tasks', label: 'failed/vm.power/host_error', points: [pt('10:02', 1), pt('10:59', 2)] },
      { metric: 'tasks', label: 'timed_out/vm.deploy/timed_out', points: [pt('11:00', 1)] },
      { metric: 'tasks', label: 'cancelled/vm.create/cancelled', points: [pt('11:00', 4)] },
    ];
    const bars = taskBars(series, at('10:00'), at('12:00'), 3600);
    assert.deepEqual(bars.succeeded, [2, 1]);
    assert.deepEqual(bars.failed, [3, 1]);
    assert.deepEqual(bars.totals, { succeeded: 3, failed: 4 });
    assert.equal(bars.x[0], Date.parse(at('10:30')) / 1000, 'a bar stands in the middle of its hour');
    // The hour in progress: its bar, in its middle (maybe after now), is inside the chart's range.
    const early = taskBars(series, at('10:00'), '2026-03-01T11:10:00.000Z', 3600);
    assert.deepEqual(barRange(early.x, 3600), [Date.parse(at('10:00')) / 1000, Date.parse(at('12:00')) / 1000]);
    assert.equal(taskSentence(RANGES['24h'], bars, now), `Tasks ended over 24 h: 3 succeeded, 4 failed or timed out; most failures in the hour from ${clock(at('10:00'))} (3).`);
    const reasons = topFailureReasons(series);
    assert.deepEqual(reasons.map((r) => [r.code, r.kind, r.count]), [['host_error', 'vm.power', 3], ['timed_out', 'vm.deploy', 1]]);
    assert.match(reasons[0]!.words!, /hypervisor failed/);
    assert.equal(RANGES['24h'].taskBar, 3600);
    const enrolled = enrollmentBars([...series, { metric: 'enrollments', label: '', points: [pt('10:10', 1), pt('11:05', 3)] }], at('10:00'), at('12:00'), 3600);
    assert.deepEqual([enrolled.values, enrolled.total], [[1, 3], 4]);
    assert.equal(enrollmentSentence(RANGES['24h'], enrolled, now), `Enrollments over 24 h: 4; most in the hour from ${clock(at('11:00'))} (3).`);
    assert.equal(enrollmentSentence(RANGES['24h'], enrollmentBars(series, at('10:00'), at('12:00'), 3600), now), 'Enrollments over 24 h: none.');
  });

  it('says the fleet presence: lowest with its time, highest; the other states at most', () => {
    const g = (at: string, min: number, avg: number, max: number) => ({ at, min, avg, max, sum: avg });
    const series: FleetSeries[] = [
      { metric: 'presence', label: 'online', points: [g('2026-03-01T10:00:00.000Z', 3, 3, 3), g('2026-03-01T10:05:00.000Z', 1, 2, 3), g('2026-03-01T10:10:00.000Z', 2, 2, 2)] },
      { metric: 'presence', label: 'offline', points: [g('2026-03-01T10:05:00.000Z', 0, 1, 2)] },
    ];
    assert.equal(presenceSentence('24 h', series, now), `Devices online over 24 h: lowest 1 at ${clock('2026-03-01T10:05:00Z')}, highest 3; unresponsive at most 0; offline at most 2.`);
    assert.equal(presenceSentence('7 d', [], now), 'Devices online over 7 d: no samples in this range yet.');
    const grid = stepGrid('2026-03-01T10:00:00.000Z', '2026-03-01T10:20:00.000Z', 300);
    assert.deepEqual(presenceLines(series, grid, 300), {
      online: [3, 2, 2, null], offline: [0, 1, 0, null], unresponsive: [0, 0, 0, null], // unsampled states are 0 where the fleet was sampled
    });
  });
});
