/**
 * Presence you can trust (docs/manager.md, "Presence"), on both store dialects: a connected
 * device silent past its status bound turns unresponsive and back online with its next
 * message; `lastSeenAt` is always its last message, never the time the manager judged it
 * (sweeps, last wills, a will handled by a manager that did not hear the device).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { waitFor } from '@pallas/testkit';
import type { DeviceEvent } from '@pallas/protocol';
import { EventBus } from '../src/services/live/event-bus.js';
import { DeviceActivity } from '../src/services/devices/device-activity.js';
import { OnlineDevices } from '../src/services/devices/online-devices.js';
import { presenceBounds } from '../src/services/devices/presence-bounds.js';
import { StalePresence } from '../src/services/devices/stale-presence.js';
import { StatusBuffer } from '../src/services/devices/status-buffer.js';
import { UnresponsiveSweep } from '../src/services/devices/unresponsive-sweep.js';
import { openStore, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

const silent = pino({ level: 'silent' });
const at = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
const outbox = { deviceOnline: async () => {} } as never;

describe('presence bounds', () => {
  it('unresponsive after the missed reports plus a tenth of an interval (at least 1 s), swept four times an interval', () => {
    assert.deepEqual(presenceBounds({ statusIntervalSec: 2, keepaliveSec: 10, missedReports: 2 }),
      { unresponsiveAfterMs: 5_000, sweepMs: 500, keepaliveCutMs: 15_000, unresponsiveFirst: true });
    assert.deepEqual(presenceBounds({ statusIntervalSec: 15, keepaliveSec: 60, missedReports: 2 }),
      { unresponsiveAfterMs: 31_500, sweepMs: 3_750, keepaliveCutMs: 90_000, unresponsiveFirst: true });
    // The defaults (60 s reports, 30 s keepalive): the keepalive ends a silent link first; only a
    // device whose connection lives on (a hung reporter) is ever shown unresponsive.
    assert.deepEqual(presenceBounds({ statusIntervalSec: 60, keepaliveSec: 30, missedReports: 2 }),
      { unresponsiveAfterMs: 126_000, sweepMs: 5_000, keepaliveCutMs: 45_000, unresponsiveFirst: false });
  });
});

function presenceSuite(makeTarget: () => Promise<StoreTarget>) {
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
  afterEach(async () => {
    await store.write.deleteFrom('devices').execute();
  });

  const insert = (...rows: Array<[id: string, presence: string, lastSeenAt: string | null]>) => store.write.insertInto('devices').values(rows.map(([id, presence, lastSeenAt]) => ({
    id, name: id, secret_hash: 'x', presence, last_seen_at: lastSeenAt, enrolled_at: at(0), updated_at: at(0), enrollment_token_id: null,
    hypervisor_kind: null, agent_version: null, facts: null, vms: null, status_seq: 0, status: 'active', pending_secret_hash: null,
    mqtt_username: null, pending_mqtt_username: null, flags: null,
  }))).execute();
  const rows = async () => Object.fromEntries((await store.write.selectFrom('devices').select(['id', 'presence', 'last_seen_at']).execute())
    .map((r) => [r.id, [r.presence, r.last_seen_at]]));

  /** A manager's presence parts on a bus of its own; `events` collects its device events. */
  async function manager(name: string, sharedBroker = false) {
    const bus = new EventBus(100, name);
    const events: DeviceEvent[] = [];
    bus.subscribe(({ event }) => { if (event.type === 'device') events.push(event.device); });
    const online = new OnlineDevices();
    const activity = new DeviceActivity({ online, outbox, events: bus, store, sharedBroker });
    await activity.start();
    return { bus, events, online, activity };
  }

  it('a device silent past its bound turns unresponsive once, keeping its last contact; its next status brings it back', async () => {
    const quiet = at(6_000);
    const recent = at(1_000);
    const long = at(60_000);
    await insert(['frozen', 'online', quiet], ['chatty', 'online', recent], ['gone', 'offline', long]);
    const m = await manager('a');
    const sweep = new UnresponsiveSweep({ store, activity: m.activity, logger: silent, unresponsiveAfterMs: 5_000 });
    assert.equal(await sweep.sweep(Date.now() - 2_000), 0, 'not yet');
    assert.equal(await sweep.sweep(), 1);
    assert.equal(await sweep.sweep(), 0, 'once');
    assert.deepEqual(await rows(), { frozen: ['unresponsive', quiet], chatty: ['online', recent], gone: ['offline', long] });
    assert.deepEqual(m.events, [{ id: 'frozen', presence: 'unresponsive', lastSeenAt: quiet }]);

    // Awake again: the status buffer writes it online, the stream says so with the receive time.
    const buffer = new StatusBuffer(store, 60_000, silent, () => {});
    const now = new Date().toISOString();
    m.online.markOnline('frozen');
    buffer.offer('frozen', { presence: 'online', lastSeenAt: now, seq: 7 });
    m.activity.status('frozen', now);
    await buffer.flush();
    assert.deepEqual((await rows()).frozen, ['online', now]);
    assert.deepEqual(m.events.at(-1), { id: 'frozen', presence: 'online', lastSeenAt: now });
    m.activity.status('frozen', at(0));
    assert.equal(m.events.length, 2, 'online is said once');
  });

  it('the stale-presence sweep takes an unresponsive device offline with its last contact', async () => {
    const quiet = at(300_000);
    await insert(['frozen', 'unresponsive', quiet]);
    const m = await manager('a');
    const stale = new StalePresence({ store, activity: m.activity, logger: silent, statusIntervalSec: 60, keepaliveSec: 30 });
    assert.equal(await stale.sweep(), 1);
    assert.deepEqual(await rows(), { frozen: ['offline', quiet] });
    assert.deepEqual(m.events, [{ id: 'frozen', presence: 'offline', lastSeenAt: quiet }]);
  });

  it('a last will changes presence, not the last contact, in the store and on the stream', async () => {
    const last = at(3_000);
    await insert(['d1', 'online', at(60_000)]);
    const m = await manager('a');
    const buffer = new StatusBuffer(store, 60_000, silent, () => {});
    // The last status, then the will (no receive time: the broker sent it) in the same flush.
    buffer.offer('d1', { presence: 'online', lastSeenAt: last, seq: 1 });
    m.activity.status('d1', last);
    buffer.offer('d1', { presence: 'offline' });
    m.activity.presence('d1', 'offline', undefined);
    await buffer.flush();
    assert.deepEqual(await rows(), { d1: ['offline', last] });
    // A will alone, in a later flush, leaves the stored last contact too.
    buffer.offer('d1', { presence: 'offline' });
    await buffer.flush();
    assert.deepEqual(await rows(), { d1: ['offline', last] });
    assert.deepEqual(m.events.map((e) => [e.presence, e.lastSeenAt]), [['online', last], ['offline', last]]);
  });

  it('a will handled by a manager that did not hear the device announces the store\'s last contact', async () => {
    const last = at(4_000);
    const witnessLast = at(7_000);
    await insert(['d2', 'online', last], ['w2', 'online', witnessLast]);
    const other = await manager('b');
    other.activity.presence('d2', 'offline', undefined);
    await waitFor('d2 announced offline', () => other.events.length > 0);
    // The witness: another device's will, through the same path (the store read, then the
    // announcement) after d2's. A second announcement of d2 would come before it.
    other.activity.presence('w2', 'offline', undefined);
    await waitFor('the witness announced offline', () => other.events.some((e) => e.id === 'w2'));
    assert.deepEqual(other.events, [{ id: 'd2', presence: 'offline', lastSeenAt: last }, { id: 'w2', presence: 'offline', lastSeenAt: witnessLast }]);
  });

  it('on a shared broker, a will announces the later of the store\'s last contact and this manager\'s', async () => {
    const stored = at(2_000);
    await insert(['d5', 'online', stored]);
    const b = await manager('b', true);
    b.activity.status('d5', at(5_000)); // an older status this manager handled; another handled the last one
    b.activity.presence('d5', 'offline', undefined);
    await waitFor('offline announced', () => b.events.length === 2);
    assert.deepEqual(b.events.at(-1), { id: 'd5', presence: 'offline', lastSeenAt: stored });
  });

  it('with several managers, the one that hears the device next announces it online again', async () => {
    const quiet = at(10_000);
    await insert(['d3', 'online', quiet]);
    const a = await manager('a');
    const b = await manager('b');
    // The relay between managers (PostgreSQL LISTEN/NOTIFY), reduced to its effect.
    a.bus.relay = (e) => b.bus.deliverJson(e.json);
    for (const m of [a, b]) m.online.markOnline('d3');
    await new UnresponsiveSweep({ store, activity: a.activity, logger: silent, unresponsiveAfterMs: 5_000 }).sweep();
    assert.deepEqual(b.events, [{ id: 'd3', presence: 'unresponsive', lastSeenAt: quiet }]);
    const now = new Date().toISOString();
    b.activity.status('d3', now);
    assert.deepEqual(b.events.at(-1), { id: 'd3', presence: 'online', lastSeenAt: now });
  });

  it('a status received while the sweep ran (still buffered) makes the manager that has it say online at once', async () => {
    const quiet = at(10_000);
    await insert(['d4', 'online', quiet]);
    const m = await manager('a');
    m.online.markOnline('d4');
    const heard = new Date().toISOString();
    m.activity.status('d4', heard); // in the status buffer, not flushed yet
    await new UnresponsiveSweep({ store, activity: m.activity, logger: silent, unresponsiveAfterMs: 5_000 }).sweep();
    assert.deepEqual(m.events.map((e) => [e.presence, e.lastSeenAt]), [['unresponsive', quiet], ['online', heard]]);
  });
}

describe('presence on SQLite', () => presenceSuite(sqliteTarget));
describe('presence on PostgreSQL', { skip: pgSkip() }, () => presenceSuite(() => postgresTarget(PG_URL!)));
