/**
 * What several managers sharing one database coordinate through (docs/scale-out.md), on both
 * store dialects: leases held by one holder at a time, manager heartbeats and dead managers,
 * the stranded-task sweep's claims, and (PostgreSQL) live events relayed between managers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompiledQuery, sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import type { LiveEvent } from '@pallas/protocol';
import { waitFor } from '@pallas/testkit';
import { ExclusiveJob } from '../src/services/cluster/exclusive-job.js';
import { Leases } from '../src/services/cluster/leases.js';
import { ClusterKeyMismatch, ManagerInstances } from '../src/services/cluster/manager-instances.js';
import { readDbNowMs } from '../src/services/cluster/db-clock.js';
import { EventBus, type NumberedEvent } from '../src/services/live/event-bus.js';
import { DeviceActivity } from '../src/services/devices/device-activity.js';
import { OnlineDevices } from '../src/services/devices/online-devices.js';
import { StalePresence } from '../src/services/devices/stale-presence.js';
import { ClusterRelay } from '../src/services/live/cluster-relay.js';
import { openStore, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

const silent = pino({ level: 'silent' });

function clusterSuite(makeTarget: () => Promise<StoreTarget>) {
  let target: StoreTarget;
  let store: Store;

  before(async () => {
    target = await makeTarget();
    store = await openStore(target.url);
    await store.migrate();
  });
  after(async () => {
    await store?.close();
    await target?.dispose();
  });

  it('a lease has one holder until it expires or is released; its holder renews it', async () => {
    const a = new Leases(store, 'm-a');
    const b = new Leases(store, 'm-b');
    assert.equal(await a.acquire('job', 400), true);
    assert.equal(await b.acquire('job', 400), false, 'held by a');
    assert.equal(await a.acquire('job', 400), true, 'the holder renews');
    assert.deepEqual((await b.holders()).map((h) => [h.name, h.holder]), [['job', 'm-a']]);
    await waitFor('b takes the expired lease', () => b.acquire('job', 60_000), { timeoutMs: 5_000, intervalMs: 100 });
    assert.equal(await a.acquire('job', 400), false, 'a lost it once it expired');
    await b.release('job');
    assert.equal(await a.acquire('job', 400), true, 'released: free at once');
    await a.release('job');
  });

  it('two holders racing for a free lease: exactly one wins, every time', async () => {
    for (let round = 0; round < 20; round++) {
      const name = `race-${round}`;
      const wins = await Promise.all(['m-1', 'm-2', 'm-3', 'm-4'].map((h) => new Leases(store, h).acquire(name, 10_000)));
      assert.equal(wins.filter(Boolean).length, 1, `round ${round}: ${wins}`);
    }
  });

  it('an exclusive job runs on the lease holder only, and moves when the holder stops', async () => {
    const runs: string[] = [];
    const job = (holder: string) => new ExclusiveJob({
      name: 'sweep', leases: new Leases(store, holder), run: async () => { runs.push(holder); }, intervalMs: 50, ttlMs: 1_000, logger: silent,
    });
    const a = job('m-a');
    const b = job('m-b');
    await a.tick();
    await b.tick();
    await a.tick();
    await b.tick();
    assert.deepEqual(runs, ['m-a', 'm-a']);
    assert.equal(a.held, true);
    assert.equal(b.held, false);
    await a.stop(); // a clean stop releases the lease
    await b.tick();
    assert.equal(b.held, true);
    assert.equal(runs.at(-1), 'm-b');
    await b.stop();
  });

  it('devices not heard from for three status intervals go offline, once, with their last contact kept', async () => {
    const at = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
    const device = (id: string, presence: string, lastSeenAt: string | null) => ({
      id, name: id, secret_hash: 'x', presence, last_seen_at: lastSeenAt, enrolled_at: at(0), updated_at: at(0), enrollment_token_id: null,
      hypervisor_kind: null, agent_version: null, facts: null, vms: null, status_seq: 0, status: 'active', pending_secret_hash: null,
      mqtt_username: null, pending_mqtt_username: null, flags: null,
    });
    await store.write.insertInto('devices').values([
      device('silent', 'online', at(300_000)), device('chatty', 'online', at(1_000)), device('gone', 'offline', at(900_000)),
    ]).execute();
    const events: LiveEvent[] = [];
    const bus = new EventBus(100, 'e');
    bus.subscribe((e) => { if (e.event.type !== 'reset') events.push(e.event); });
    const online = new OnlineDevices();
    for (const id of ['silent', 'chatty']) online.markOnline(id);
    const activity = new DeviceActivity({ online, outbox: {} as never, events: bus, store });
    // Status every 60 s, keepalive 30 s: silent for 3 min 45 s means gone.
    const stale = new StalePresence({ store, activity, logger: silent, statusIntervalSec: 60, keepaliveSec: 30 });
    assert.equal(await stale.sweep(Date.now() - 100_000), 0, 'not yet');
    assert.equal(await stale.sweep(), 1);
    assert.equal(await stale.sweep(), 0, 'once');
    const rows = await store.write.selectFrom('devices').select(['id', 'presence', 'last_seen_at']).orderBy('id').execute();
    assert.deepEqual(rows.map((r) => [r.id, r.presence]), [['chatty', 'online'], ['gone', 'offline'], ['silent', 'offline']]);
    assert.equal(online.isOnline('silent'), false);
    assert.equal(online.isOnline('chatty'), true);
    assert.deepEqual(events, [{ type: 'device', device: { id: 'silent', presence: 'offline', lastSeenAt: rows[2]!.last_seen_at } }]);
    await store.write.deleteFrom('devices').execute();
  });

  it('managers heartbeat; one that stops beating is dead; a manager with other signing keys may not join', async () => {
    const a = new ManagerInstances({ id: 'm-hb-a', store, logger: silent, version: '1', url: null, broker: 'external', keysFingerprint: 'k1' });
    await a.start();
    const alive = (await a.list()).find((m) => m.id === 'm-hb-a');
    assert.equal(alive?.alive, true);
    const stranger = new ManagerInstances({ id: 'm-hb-x', store, logger: silent, version: '1', url: null, broker: 'external', keysFingerprint: 'k2' });
    await assert.rejects(stranger.start(), ClusterKeyMismatch);
    // A manager killed with SIGKILL leaves its row; without heartbeats it turns dead.
    const killed = new ManagerInstances({ id: 'm-hb-b', store, logger: silent, version: '1', url: null, broker: 'external', keysFingerprint: 'k1' });
    await killed.start();
    await killed.stop(); // removes the row: put one back the way a killed manager leaves it
    await store.write.insertInto('manager_instances').values({
      id: 'm-hb-b', hostname: 'h', pid: 1, version: '1', url: null, broker: 'external', keys_fingerprint: 'k1', started_ms: 0, heartbeat_ms: 0,
    }).execute();
    assert.deepEqual(await a.deadIds(), ['m-hb-b']);
    assert.equal((await a.list()).find((m) => m.id === 'm-hb-b')?.alive, false);
    await a.stop();
    assert.equal((await a.list()).some((m) => m.id === 'm-hb-a'), false, 'a clean stop removes the row');
    await store.write.deleteFrom('manager_instances').execute();
  });
}

/** A plain session LISTENing on the relay's channel, without the listeners' lock: every payload, as sent. */
async function listenAsEarlierVersion(url: string): Promise<{ ear: pg.Client; heard: string[] }> {
  const ear = new pg.Client({ connectionString: url });
  const heard: string[] = [];
  ear.on('notification', (n) => heard.push(n.payload ?? ''));
  await ear.connect();
  await ear.query('LISTEN pallas_live');
  return { ear, heard };
}

describe('cluster coordination on SQLite', () => clusterSuite(sqliteTarget));
describe('cluster coordination on PostgreSQL', { skip: pgSkip() }, () => {
  clusterSuite(() => postgresTarget(PG_URL!));

  it('a manager alone relays nothing; once another listens, or an earlier version\'s heartbeat is alive, it relays', async () => {
    const target = await postgresTarget(PG_URL!);
    const store = await openStore(target.url);
    await store.migrate();
    // Hears every notification on the channel, as an earlier version's manager would (no lock).
    const { ear, heard } = await listenAsEarlierVersion(target.url);
    // Everything notified before the marker has arrived once the marker has (commit order).
    const upToMarker = async (name: string) => {
      await store.write.executeQuery(CompiledQuery.raw(`select pg_notify('pallas_live', '${name}')`));
      await waitFor(`the ear hears ${name}`, () => heard.includes(name), { timeoutMs: 10_000 });
      return heard.splice(0).filter((p) => p !== name);
    };
    const ev = (i: number): LiveEvent => ({ type: 'vms', deviceId: `d${i}`, vms: [] });
    const a = new EventBus(1_000, 'a');
    const b = new EventBus(1_000, 'b');
    const running = new Set<ClusterRelay>();
    const start = async (bus: EventBus, instanceId: string) => {
      const relay = new ClusterRelay({ databaseUrl: target.url, store, bus, instanceId, logger: silent });
      await relay.start();
      running.add(relay);
      return relay;
    };
    const stop = async (relay: ClusterRelay) => {
      running.delete(relay);
      await relay.stop(); // waits for its sending to end
    };
    try {
      const relayA = await start(a, 'm-a');
      for (let i = 0; i < 100; i++) a.emit(ev(i));
      await stop(relayA);
      assert.deepEqual(await upToMarker('marker-1'), [], 'alone: nothing sent');

      const relayA2 = await start(a, 'm-a');
      const relayB = await start(b, 'm-b');
      const seenOnB: LiveEvent[] = [];
      b.subscribe((e) => { if (e.event.type !== 'reset') seenOnB.push(e.event); });
      for (let i = 0; i < 10; i++) a.emit(ev(i));
      await waitFor('B hears A\'s 10 events', () => seenOnB.length === 10, { timeoutMs: 10_000 });
      await stop(relayB);
      await upToMarker('marker-2');

      // B gone: alone again once A asks again (a yes holds a second). Then a manager of an
      // earlier version beats (it listens without the lock).
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      a.emit(ev(1));
      await stop(relayA2);
      assert.deepEqual(await upToMarker('marker-3'), [], 'alone again once B stopped');
      const relayA3 = await start(a, 'm-a');
      const now = await readDbNowMs(store);
      await store.write.insertInto('manager_instances').values({
        id: 'm-old', hostname: 'h', pid: 1, version: '0', url: null, broker: 'external', keys_fingerprint: 'k', started_ms: now, heartbeat_ms: now,
      }).execute();
      a.emit(ev(2));
      await stop(relayA3);
      const relayed = await upToMarker('marker-4');
      assert.equal(relayed.length, 1, 'relayed while an earlier version\'s heartbeat is alive');
      assert.match(relayed[0]!, /"from":"m-a"/);
    } finally {
      for (const relay of running) await relay.stop();
      await ear.end();
      await store.close();
      await target.dispose();
    }
  });

  it('live events emitted on one manager reach the others, in order, large ones included', async () => {
    const target = await postgresTarget(PG_URL!);
    const store = await openStore(target.url);
    await store.migrate();
    const buses = [new EventBus(5_000, 'a'), new EventBus(5_000, 'b'), new EventBus(5_000, 'c')];
    const relays = buses.map((bus, i) => new ClusterRelay({ databaseUrl: target.url, store, bus, instanceId: `m-${i}`, logger: silent }));
    try {
      for (const r of relays) await r.start();
      const seenOnC: LiveEvent[] = [];
      buses[2]!.subscribe((e) => { if (e.event.type !== 'reset') seenOnC.push(e.event); });
      const seenOnA: LiveEvent[] = [];
      buses[0]!.subscribe((e) => { if (e.event.type !== 'reset') seenOnA.push(e.event); });
      const ev = (i: number, vms = 0): LiveEvent => ({
        type: 'vms', deviceId: `d${i}`,
        vms: Array.from({ length: vms }, (_, k) => ({ id: `vm-${k}`, name: `vm-${k}-${'x'.repeat(40)}` })) as never,
      });
      // A fan-out's worth in one turn, and one event larger than a NOTIFY payload may be.
      for (let i = 0; i < 2_000; i++) buses[0]!.emit(ev(i));
      buses[1]!.emit(ev(9_999, 400));
      await waitFor('C hears all 2,001 events', () => seenOnC.length === 2_001, { timeoutMs: 15_000 });
      const fromA = seenOnC.filter((e) => e.type === 'vms' && e.deviceId !== 'd9999');
      assert.deepEqual(fromA.map((e) => (e as { deviceId: string }).deviceId), Array.from({ length: 2_000 }, (_, i) => `d${i}`), 'in order');
      const big = seenOnC.find((e) => e.type === 'vms' && e.deviceId === 'd9999') as { vms: unknown[] };
      assert.equal(big.vms.length, 400);
      // A reads B's parked event on its own: wait for it too. Then a marker from C, committed
      // after all of A's notifications: PostgreSQL delivers them in commit order, so an echo of
      // A's own events would have arrived before it.
      await waitFor('A hears B', () => seenOnA.length >= 2_001, { timeoutMs: 15_000 });
      buses[2]!.emit(ev(-1));
      await waitFor('A hears the marker', () => seenOnA.some((e) => e.type === 'vms' && e.deviceId === 'd-1'), { timeoutMs: 15_000 });
      assert.equal(seenOnA.filter((e) => !(e.type === 'vms' && e.deviceId === 'd-1')).length, 2_001, 'A hears B, and its own events once (not echoed back)');
      assert.ok(buses[2]!.since(`c.1`)!.length >= 2_000, 'relayed events are numbered and replayable on C');
    } finally {
      for (const r of relays) await r.stop();
      await store.close();
      await target.dispose();
    }
  });

  it('relayed events go one per line and are handed on as the JSON they came in; both envelope forms read as JSON', async () => {
    const target = await postgresTarget(PG_URL!);
    const store = await openStore(target.url);
    await store.migrate();
    // Hears the channel as a manager of an earlier version does: it parses every envelope whole.
    const { ear, heard } = await listenAsEarlierVersion(target.url);
    const buses = [new EventBus(100, 'a'), new EventBus(100, 'b')];
    const relays = buses.map((bus, i) => new ClusterRelay({ databaseUrl: target.url, store, bus, instanceId: `m-${i}`, logger: silent }));
    const task = (id: string): LiveEvent => ({ type: 'task', task: { id, deviceId: 'd1', kind: 'vm.create', state: 'running', note: 'a\nb "c"' } as never });
    const vms: LiveEvent = { type: 'vms', deviceId: 'd1', vms: [] };
    try {
      for (const r of relays) await r.start();
      const onB: NumberedEvent[] = [];
      buses[1]!.subscribe((e) => { if (e.type !== 'reset') onB.push(e); });
      const sent = [task('tsk_1'), task('tsk_2'), vms];
      for (const e of sent) buses[0]!.emit(e);
      await waitFor('B hears A\'s 3 events', () => onB.length === 3, { timeoutMs: 15_000 });
      assert.deepEqual(onB.map((e) => e.json), sent.map((e) => JSON.stringify(e)), 'the text A made, unchanged (a line break inside a string stays escaped)');
      assert.deepEqual(onB.map((e) => e.type), ['task', 'task', 'vms']);
      assert.deepEqual(onB.map((e) => e.event), sent);
      const fromA = heard.filter((p) => p.startsWith('{"from":"m-0"'));
      assert.equal(fromA.length, 2, 'task events in an envelope of their own');
      assert.ok(fromA.every((p) => p.includes('[\n{')), 'one event per line');
      assert.deepEqual(fromA.flatMap((p) => (JSON.parse(p) as { events: LiveEvent[] }).events), sent, 'an earlier version parses them whole');

      // An earlier version's envelope: its events on one line.
      const old: LiveEvent = { type: 'device', device: { id: 'd2', presence: 'online', lastSeenAt: null } as never };
      await sql`select pg_notify('pallas_live', ${JSON.stringify({ from: 'm-old', n: 1, events: [old] })})`.execute(store.write);
      await waitFor('B hears the earlier version', () => onB.length === 4, { timeoutMs: 15_000 });
      assert.deepEqual(onB[3]!.event, old);
    } finally {
      for (const r of relays) await r.stop();
      await ear.end();
      await store.close();
      await target.dispose();
    }
  });

  it('a manager whose listeners want no task events passes relayed ones over unread; a client back with an earlier id gets reset', async () => {
    const target = await postgresTarget(PG_URL!);
    const store = await openStore(target.url);
    await store.migrate();
    const buses = [new EventBus(5_000, 'a'), new EventBus(5_000, 'b')];
    const relays = buses.map((bus, i) => new ClusterRelay({ databaseUrl: target.url, store, bus, instanceId: `m-${i}`, logger: silent }));
    const task = (id: string): LiveEvent => ({ type: 'task', task: { id, deviceId: 'd1', kind: 'vm.create', state: 'running' } as never });
    const vms = (deviceId: string): LiveEvent => ({ type: 'vms', deviceId, vms: [] });
    try {
      for (const r of relays) await r.start();
      // B's only listener looks at inventories (as DeviceInventory's does); no stream is open.
      const inventories: string[] = [];
      const delivered: string[] = [];
      buses[1]!.subscribe((e) => { delivered.push(e.event.type); if (e.event.type === 'vms') inventories.push(e.event.deviceId); }, (type) => type === 'vms');
      buses[0]!.emit(vms('v0'));
      await waitFor('B hears v0', () => inventories.length === 1, { timeoutMs: 15_000 });
      const before = delivered.length;
      buses[0]!.emit(task('tsk_1'));
      buses[0]!.emit(vms('v1'));
      buses[0]!.emit(task('tsk_2'));
      buses[0]!.emit(vms('v2'));
      await waitFor('B hears v2', () => inventories.includes('v2'), { timeoutMs: 15_000 });
      assert.deepEqual(inventories, ['v0', 'v1', 'v2'], 'the inventories, in order');
      assert.deepEqual(delivered.slice(before), ['vms', 'vms'], 'the task events were not delivered on B');
      assert.equal(buses[1]!.since('b.1'), null, 'a client back with an id from before them reloads');
      assert.deepEqual(buses[1]!.since('b.3'), [], 'one with the latest id (v2) misses nothing');

      // A stream client opens on B: task events are wanted again, and delivered.
      const streamed: LiveEvent[] = [];
      const close = buses[1]!.subscribe((e) => { if (e.event.type !== 'reset') streamed.push(e.event); });
      buses[0]!.emit(task('tsk_3'));
      await waitFor('B delivers tsk_3', () => streamed.some((e) => e.type === 'task' && e.task.id === 'tsk_3'), { timeoutMs: 15_000 });
      close();
    } finally {
      for (const r of relays) await r.stop();
      await store.close();
      await target.dispose();
    }
  });
});
