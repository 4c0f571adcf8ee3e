/**
 * History kept by the manager (docs/history.md), on a real store (SQLite, and PostgreSQL when
 * PALLAS_TEST_PG_URL is set) with a test clock: devices report over simulated time through
 * the recorder (what the status buffer hands it), the fleet sampler counts what ended, and
 * the reader returns the points; downsampling and pruning keep the bounds we state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { sampleHostFacts } from '@pallas/testkit';
import { openStore, type Store } from '../src/store/store.js';
import { HistoryRecorder } from '../src/services/history/history-recorder.js';
import { FleetSampler } from '../src/services/history/fleet-sampler.js';
import { HistoryPruner } from '../src/services/history/history-pruner.js';
import { HistoryReader } from '../src/services/history/history-reader.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

const logger = pino({ level: 'silent' });
const MIN = 60_000;
/** A whole hour, so buckets line up: 2026-01-01T00:00Z. */
const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

function historySuite(target: () => Promise<StoreTarget>) {
  let t: StoreTarget;
  let store: Store;
  let now = T0;
  const clock = () => now;
  const ids = ['dev-a', 'dev-b', 'dev-c'];

  before(async () => {
    t = await target();
    store = await openStore(t.url);
    await store.migrate();
    for (const id of ids) {
      await store.write.insertInto('devices').values({
        id, name: id, secret_hash: 'x', presence: 'offline', enrolled_at: iso(T0 + 30_000), updated_at: iso(T0), status_seq: 0, status: 'active',
      } as never).execute();
    }
  });
  after(async () => {
    await store?.close();
    await t?.dispose();
  });

  const report = (rec: HistoryRecorder, id: string, at: number, cpu: number) =>
    rec.observe([[id, { presence: 'online', lastSeenAt: iso(at), facts: sampleHostFacts(id, { cpu: { model: 'x', cores: 4, usagePct: cpu }, memory: { totalMB: 8192, usedMB: 1000 + cpu } }) }]]);

  it('keeps each device minute by minute and by quarter hour, min/avg/max per bucket', async () => {
    const rec = new HistoryRecorder({ store, logger, now: clock });
    // 40 minutes, a report every 10 s: CPU climbs 0..239 % / 2.4 (so each minute has 6 known values).
    for (let i = 0; i < 240; i++) {
      now = T0 + i * 10_000;
      for (const id of ids) report(rec, id, now, i / 2.4);
    }
    now = T0 + 40 * MIN;
    await rec.write();
    const reader = new HistoryReader({ store, now: clock });
    const fine = await reader.device('dev-a', { from: iso(T0), to: iso(T0 + 40 * MIN) });
    assert.equal(fine.step, 60);
    assert.equal(fine.points.length, 40);
    const p = fine.points[5]!;
    assert.equal(p.at, iso(T0 + 5 * MIN));
    assert.equal(p.samples, 6);
    // Minute 5 holds reports 30..35: CPU 12.5 .. 14.583.
    assert.ok(Math.abs(p.cpuPct!.min - 30 / 2.4) < 1e-3 && Math.abs(p.cpuPct!.max - 35 / 2.4) < 1e-3, JSON.stringify(p.cpuPct));
    assert.ok(Math.abs(p.cpuPct!.avg - 32.5 / 2.4) < 1e-3);
    assert.equal(p.memoryTotalMB, 8192);
    assert.deepEqual(p.datastoreUsedGB, { min: 250, avg: 250, max: 250 });
    assert.equal(p.datastoreCapacityGB, 500);

    // A step of 5 minutes over the fine buckets: 8 points of 30 reports each.
    const five = await reader.device('dev-a', { from: iso(T0), to: iso(T0 + 40 * MIN), step: 300 });
    assert.deepEqual(five.points.map((x) => x.samples), Array(8).fill(30));
    // Quarter hours: the two closed ones were written; the third is still open in memory.
    const coarse = await reader.device('dev-a', { from: iso(T0), to: iso(T0 + 45 * MIN), step: 900 });
    assert.deepEqual(coarse.points.map((x) => [x.at, x.samples]), [[iso(T0), 90], [iso(T0 + 15 * MIN), 90]]);
    assert.ok(Math.abs(coarse.points[1]!.cpuPct!.avg - (90 + 179) / 2 / 2.4) < 1e-3);
    await rec.stop(); // writes the open quarter hour (30 reports) too
    const all = await reader.device('dev-a', { from: iso(T0), to: iso(T0 + 45 * MIN), step: 900 });
    assert.deepEqual(all.points.map((x) => x.samples), [90, 90, 60]);
  });

  it('merges a bucket written in parts by two managers exactly', async () => {
    const a = new HistoryRecorder({ store, logger, now: clock });
    const b = new HistoryRecorder({ store, logger, now: clock });
    const minute = T0 + 2 * 3600_000;
    now = minute;
    report(a, 'dev-b', minute + 1000, 10);
    report(b, 'dev-b', minute + 2000, 50);
    report(a, 'dev-b', minute + 3000, 30);
    now = minute + MIN;
    await a.write();
    await b.write();
    const reader = new HistoryReader({ store, now: clock });
    const h = await reader.device('dev-b', { from: iso(minute), to: iso(minute + MIN) });
    assert.equal(h.points.length, 1);
    assert.deepEqual(h.points[0]!.cpuPct, { min: 10, avg: 30, max: 50 });
    assert.equal(h.points[0]!.samples, 3);
  });

  it('records presence transitions and sums them up in words an operator reads', async () => {
    const rec = new HistoryRecorder({ store, logger, now: clock });
    const start = T0 + 3 * 3600_000;
    rec.presenceChanged('dev-c', 'online', iso(start));
    rec.presenceChanged('dev-c', 'online', iso(start + MIN)); // no change: not a transition
    rec.presenceChanged('dev-c', 'offline', iso(start + 10 * MIN));
    rec.presenceChanged('dev-c', 'online', iso(start + 51 * MIN));
    rec.presenceChanged('dev-c', 'unresponsive', iso(start + 70 * MIN)); // a state this schema never heard of
    rec.presenceChanged('dev-c', 'online', iso(start + 72 * MIN));
    now = start + 80 * MIN;
    await rec.write();
    // A second manager that never saw dev-c writes the same state: no new transition.
    const other = new HistoryRecorder({ store, logger, now: clock });
    other.presenceChanged('dev-c', 'online', iso(start + 75 * MIN));
    await other.write();
    const reader = new HistoryReader({ store, now: clock });
    const h = await reader.device('dev-c', { from: iso(start - 60 * MIN), to: iso(start + 80 * MIN) });
    assert.deepEqual(h.presence.map((i) => i.state), ['online', 'offline', 'online', 'unresponsive', 'online']);
    assert.equal(h.presence.at(-1)!.to, null); // it lasts
    const offline = h.presenceSummary.find((s) => s.state === 'offline')!;
    assert.deepEqual(offline, { state: 'offline', times: 1, totalSec: 41 * 60, longestSec: 41 * 60 });
    // From inside the first interval: the state held at `from` is where it starts.
    const later = await reader.device('dev-c', { from: iso(start + 20 * MIN), to: iso(start + 60 * MIN) });
    assert.deepEqual(later.presence, [
      { state: 'offline', from: iso(start + 20 * MIN), to: iso(start + 51 * MIN) },
      { state: 'online', from: iso(start + 51 * MIN), to: iso(start + 60 * MIN) },
    ]);
  });

  it('records a batch whose first transition another manager wrote already, and the ones after it', async () => {
    const start = T0 + 6 * 3600_000;
    for (const id of ['dev-d', 'dev-e']) {
      await store.write.insertInto('devices').values({
        id, name: id, secret_hash: 'x', presence: 'offline', enrolled_at: iso(T0 + 30_000), updated_at: iso(T0), status_seq: 0, status: 'active',
      } as never).execute();
    }
    const a = new HistoryRecorder({ store, logger, now: clock });
    a.presenceChanged('dev-d', 'online', iso(start));
    a.presenceChanged('dev-e', 'online', iso(start));
    await a.write();
    // B never saw either device: dev-d's first is what A wrote (skipped), what follows is new.
    const b = new HistoryRecorder({ store, logger, now: clock });
    b.presenceChanged('dev-d', 'online', iso(start + MIN));
    b.presenceChanged('dev-e', 'offline', iso(start + MIN));
    b.presenceChanged('dev-d', 'offline', iso(start + 2 * MIN));
    b.presenceChanged('dev-d', 'online', iso(start + 3 * MIN));
    await b.write();
    const reader = new HistoryReader({ store, now: clock });
    const range = { from: iso(start - MIN), to: iso(start + 5 * MIN) };
    assert.deepEqual((await reader.device('dev-d', range)).presence.map((i) => [i.state, i.from]),
      [['online', iso(start)], ['offline', iso(start + 2 * MIN)], ['online', iso(start + 3 * MIN)]]);
    assert.deepEqual((await reader.device('dev-e', range)).presence.map((i) => [i.state, i.from]),
      [['online', iso(start)], ['offline', iso(start + MIN)]]);
    // The other tests see three devices.
    await store.write.deleteFrom('device_presence_history').where('device_id', 'in', ['dev-d', 'dev-e']).execute();
    await store.write.deleteFrom('devices').where('id', 'in', ['dev-d', 'dev-e']).execute();
  });

  it('samples the fleet once a minute: devices by presence, tasks by outcome, enrollments; rolls up quarter hours', async () => {
    // Reset marks and presence to a known start: all three offline, history has them online.
    const sampler = new FleetSampler({ store, logger, now: clock });
    const base = T0 + 24 * 3600_000;
    const task = (id: string, state: string, kind: string, code: string | null, finished: number) => store.write.insertInto('tasks').values({
      id, device_id: 'dev-a', kind, operation: '{}', state, error_code: code, created_by: 'test', created_at: iso(finished - 1000),
      finished_at: iso(finished), deadline_at: iso(finished + 3600_000), updated_at: iso(finished),
    } as never).execute();
    await task('t1', 'succeeded', 'vm.create', null, base + 5_000);
    await task('t2', 'failed', 'vm.deploy', 'download_failed', base + 20_000);
    await task('t3', 'failed', 'vm.deploy', 'download_failed', base + MIN + 5_000);
    now = base + 30_000 - MIN; // the first run starts counting at the minute before
    await sampler.sample();
    for (let m = 0; m < 20; m++) {
      now = base + m * MIN + 45_000;
      if (m === 3) await store.write.updateTable('devices').set({ presence: 'online' }).where('id', '=', 'dev-a').execute();
      await sampler.sample();
    }
    const reader = new HistoryReader({ store, now: clock });
    const h = await reader.fleet({ from: iso(base), to: iso(base + 20 * MIN) });
    const series = (metric: string, label: string) => h.series.find((s) => s.metric === metric && s.label === label);
    const online = series('presence', 'online')!;
    assert.deepEqual(online.points.slice(0, 5).map((p) => p.max), [0, 0, 0, 1, 1]);
    const failed = series('tasks', 'failed/vm.deploy/download_failed')!;
    assert.deepEqual(failed.points.map((p) => [p.at, p.sum]), [[iso(base), 1], [iso(base + MIN), 1]]);
    assert.equal(series('tasks', 'succeeded/vm.create/')!.points[0]!.sum, 1);
    // Running the same minute again (a lease handed over mid-run) counts nothing twice.
    await store.write.deleteFrom('history_marks').where('name', '=', 'fleet-counted').execute();
    await store.write.insertInto('history_marks').values({ name: 'fleet-counted', bucket: Math.floor(base / MIN) }).execute();
    await sampler.sample();
    const again = await reader.fleet({ from: iso(base), to: iso(base + 20 * MIN), metric: 'tasks' });
    assert.deepEqual(again.series.find((s) => s.label === 'failed/vm.deploy/download_failed')!.points.map((p) => p.sum), [1, 1]);
    // The first quarter hour was rolled up: 15 presence samples, both failures in one point.
    const coarse = await reader.fleet({ from: iso(base), to: iso(base + 15 * MIN), step: 900 });
    const q = coarse.series.find((s) => s.metric === 'presence' && s.label === 'online')!.points;
    assert.equal(q.length, 1);
    assert.deepEqual([q[0]!.min, q[0]!.max], [0, 1]);
    assert.ok(Math.abs(q[0]!.avg - 12 / 15) < 1e-9, String(q[0]!.avg));
    assert.equal(coarse.series.find((s) => s.label === 'failed/vm.deploy/download_failed')!.points[0]!.sum, 2);
    // Presence the devices table changed without the recorder (dev-a online at minute 3) was reconciled.
    const a = await reader.device('dev-a', { from: iso(base), to: iso(base + 20 * MIN) });
    assert.deepEqual(a.presence.map((i) => [i.state, i.from]), [['offline', iso(base)], ['online', iso(base + 3 * MIN + 45_000)]]);
  });

  it('prunes to the stated bounds: 1-minute buckets 25 h, 15-minute buckets 31 days, a device\'s last transition kept', async () => {
    const pruner = new HistoryPruner({ store, logger, now: clock });
    const count = async (resolution: number) => Number((await store.read.selectFrom('device_history').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('resolution', '=', resolution).executeTakeFirstOrThrow()).n);
    assert.ok(await count(1) > 0);
    now = T0 + 25 * 3600_000 + 20 * MIN; // 25 h after minute 20 of the first test
    await pruner.prune();
    const oldest = await store.read.selectFrom('device_history').select((eb) => eb.fn.min<number>('bucket').as('b')).where('resolution', '=', 1).executeTakeFirstOrThrow();
    assert.ok(Number(oldest.b) >= Math.floor(now / MIN) - 25 * 60, `oldest fine bucket ${oldest.b}`);
    assert.ok(await count(15) > 0);
    now = T0 + 33 * 24 * 3600_000;
    await pruner.prune();
    assert.equal(await count(1), 0);
    assert.equal(await count(15), 0);
    const fleet = await store.read.selectFrom('fleet_history').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(fleet.n), 0);
    const transitions = await store.read.selectFrom('device_presence_history').select(['device_id', 'state']).orderBy('device_id').execute();
    assert.deepEqual(transitions.map((r) => r.device_id), ['dev-a', 'dev-b', 'dev-c']); // one each: the latest
    // A decommissioned device's history goes whole at the next prune.
    await store.write.deleteFrom('device_tags').where('device_id', '=', 'dev-c').execute();
    await store.write.deleteFrom('devices').where('id', '=', 'dev-c').execute();
    await pruner.prune();
    const left = await store.read.selectFrom('device_presence_history').select('device_id').orderBy('device_id').execute();
    assert.deepEqual(left.map((r) => r.device_id), ['dev-a', 'dev-b']);
  });

  it('refuses a range upside down or with too many points', async () => {
    const reader = new HistoryReader({ store, now: clock });
    await assert.rejects(reader.device('dev-a', { from: iso(now), to: iso(now - MIN) }), /before/);
    await assert.rejects(reader.device('dev-a', { from: iso(now - 30 * 24 * 3600_000), to: iso(now), step: 60 }), /at most 2000/);
    await assert.rejects(reader.device('nope', {}), /not found/);
  });
}

describe('history on SQLite', () => historySuite(sqliteTarget));
describe('history on PostgreSQL', { skip: pgSkip() }, () => historySuite(() => postgresTarget(PG_URL!)));
