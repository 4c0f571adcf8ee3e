import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { LiveEvent, Vm } from '@pallas/protocol';
import { sampleHostFacts } from '@pallas/testkit';
import { Services, type Service } from '../src/lifecycle.js';
import { DeviceCredentials } from '../src/services/devices/device-credentials.js';
import { DeviceInventory } from '../src/services/devices/device-inventory.js';
import { EnrollmentService } from '../src/services/enrollment/enrollment-service.js';
import { EventBus } from '../src/services/live/event-bus.js';
import { openStore, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';
import { fakeVm } from './support.js';

const logger = pino({ level: 'silent' });

/** Run on each store dialect: the writes are one CASE statement per chunk with RETURNING. */
function inventorySuite(makeTarget: () => Promise<StoreTarget>) {
  let target: StoreTarget;
  let store: Store;
  let enrollment: EnrollmentService;
  const events = new EventBus();
  const seen: Array<Extract<LiveEvent, { type: 'vms' }>> = [];
  events.subscribe((e) => { if (e.event.type === 'vms') seen.push(e.event); });

  before(async () => {
    target = await makeTarget();
    store = await openStore(target.url);
    await store.migrate();
    enrollment = new EnrollmentService({ store, credentials: new DeviceCredentials(store), settings: { keepaliveSec: 30, statusIntervalSec: 60 }, logger });
  });
  after(async () => {
    await store.close();
    await target.dispose();
  });

  const newDevice = async (vms: Vm[] = []) => {
    const id = randomUUID();
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    await enrollment.enroll({ token: token.token, deviceId: id, facts: sampleHostFacts(id.slice(0, 8)) }, 'mqtt://x:1');
    await store.write.updateTable('devices').set({ vms: JSON.stringify(vms) }).where('id', '=', id).execute();
    return id;
  };
  const stored = async (id: string): Promise<Vm[]> => {
    const row = await store.read.selectFrom('devices').select('vms').where('id', '=', id).executeTakeFirstOrThrow();
    return row.vms === null ? [] : (JSON.parse(row.vms) as Vm[]);
  };
  const eventsFor = (id: string) => seen.filter((e) => e.deviceId === id).map((e) => e.vms);
  const inventory = () => new DeviceInventory({ store, events, logger, flushMs: 60_000 });

  it('announces a reported list once per real change and writes it behind', async () => {
    const inv = inventory();
    const id = await newDevice();
    const a = fakeVm('vm-a');
    const b = fakeVm('vm-b');
    inv.reported(id, [a]);
    inv.reported(id, [a]);
    assert.deepEqual(await stored(id), [], 'not written before the flush');
    await inv.flush();
    assert.deepEqual(await stored(id), [a]);
    inv.reported(id, [a, b]);
    inv.reported(id, [b, a]); // the same VMs in another order: no news
    await inv.stop();
    assert.deepEqual(await stored(id), [a, b]);
    assert.deepEqual(eventsFor(id), [[a], [a, b]]);
  });

  it('writes a task\'s change in the caller\'s transaction and announces it after the commit; the report that follows is no news', async () => {
    const inv = inventory();
    const a = fakeVm('vm-a');
    const id = await newDevice([a]); // not heard of since the start: its list comes from the store
    const b = fakeVm('vm-b');
    const write = await store.write.transaction().execute((tx) => inv.applyInTransaction(tx, [{ deviceId: id, vm: b }, { deviceId: id, vm: { ...a, powerState: 'off' } }]));
    assert.deepEqual(eventsFor(id), [], 'nothing announced before the commit');
    assert.deepEqual(await stored(id), [{ ...a, powerState: 'off' }, b], 'stored with the transaction');
    inv.committed(write);
    assert.deepEqual(eventsFor(id), [[{ ...a, powerState: 'off' }, b]]);
    inv.reported(id, [{ ...a, powerState: 'off' }, b]);
    const del = await store.write.transaction().execute((tx) => inv.applyInTransaction(tx, [{ deviceId: id, deletedVmId: a.id }]));
    inv.committed(del);
    assert.deepEqual(await stored(id), [b]);
    assert.deepEqual(eventsFor(id), [[{ ...a, powerState: 'off' }, b], [b]]);
  });

  it('applies a task\'s change on top of a report that came in during its transaction, and writes that behind', async () => {
    const inv = inventory();
    const id = await newDevice();
    const a = fakeVm('vm-a');
    const x = fakeVm('vm-x', 'made-outside');
    inv.reported(id, []);
    await inv.flush();
    const write = await store.write.transaction().execute((tx) => inv.applyInTransaction(tx, [{ deviceId: id, vm: a }]));
    inv.reported(id, [x]); // sent before the result reached us: lacks the task's VM
    inv.committed(write);
    assert.deepEqual(eventsFor(id).at(-1), [x, a]);
    await inv.flush();
    assert.deepEqual(await stored(id), [x, a]);
  });

  it('takes a list another manager relayed as known: the report that follows is no news here either', async () => {
    // Two managers, each with its own bus; what one emits reaches the other as the cluster
    // relay delivers it (the JSON of the notification, parsed where it is read).
    const busA = new EventBus();
    const busB = new EventBus();
    const relayedToB: Array<Extract<LiveEvent, { type: 'vms' }>> = [];
    busB.subscribe((e) => { if (e.event.type === 'vms') relayedToB.push(e.event); });
    busA.relay = (event) => busB.deliverJson(event.json, 'vms');
    const a = new DeviceInventory({ store, events: busA, logger, flushMs: 60_000 });
    const b = new DeviceInventory({ store, events: busB, logger, flushMs: 60_000 });
    await a.start();
    await b.start();
    try {
      const vm1 = fakeVm('vm-1');
      const id = await newDevice([vm1]);
      b.reported(id, [vm1]); // B handled the device's earlier report
      await b.flush();
      const vm2 = fakeVm('vm-2');
      const write = await store.write.transaction().execute((tx) => a.applyInTransaction(tx, [{ deviceId: id, vm: vm2 }]));
      a.committed(write); // A stored the task's result; its event reaches B
      const before = relayedToB.length;
      b.reported(id, [vm2, vm1]); // the device's report after the task goes to B
      assert.equal(relayedToB.length, before, 'B announces nothing: A did');
      // Nothing of B's to write: the row stays as A's transaction left it, even if changed since.
      await store.write.updateTable('devices').set({ vms: JSON.stringify([]) }).where('id', '=', id).execute();
      await b.flush();
      assert.deepEqual(await stored(id), []);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('leaves a removed device alone', async () => {
    const inv = inventory();
    const gone = randomUUID();
    const write = await store.write.transaction().execute((tx) => inv.applyInTransaction(tx, [{ deviceId: gone, vm: fakeVm('vm-a') }]));
    inv.committed(write);
    assert.deepEqual(eventsFor(gone), []);
    const id = await newDevice();
    inv.reported(id, [fakeVm('vm-a')]);
    inv.removed(id);
    await inv.flush();
    assert.deepEqual(await stored(id), []);
  });
}

describe('DeviceInventory on SQLite', () => inventorySuite(sqliteTarget));
describe('DeviceInventory on PostgreSQL', { skip: pgSkip() }, () => inventorySuite(() => postgresTarget(PG_URL!)));

describe('Services', () => {
  const recording = (name: string, log: string[], fail?: 'start' | 'stop'): Service => ({
    name,
    start: async () => { log.push(`start ${name}`); if (fail === 'start') throw new Error(`${name} failed`); },
    stop: async () => { log.push(`stop ${name}`); if (fail === 'stop') throw new Error(`${name} failed`); },
  });

  it('starts in order, stops in reverse, and a failing stop does not stop the others from stopping', async () => {
    const log: string[] = [];
    const services = new Services(logger).add(recording('a', log), recording('b', log, 'stop'));
    await services.start();
    services.add(recording('c', log));
    await services.start();
    await services.stop();
    await services.stop(); // nothing left to stop
    assert.deepEqual(log, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('stops what it started, the failing one included, when a start fails', async () => {
    const log: string[] = [];
    const services = new Services(logger).add(recording('a', log), recording('b', log, 'start'), recording('c', log));
    await assert.rejects(services.start(), /b failed/);
    assert.deepEqual(log, ['start a', 'start b', 'stop b', 'stop a']);
  });
});
