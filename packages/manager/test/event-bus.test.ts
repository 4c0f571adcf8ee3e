import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LiveEvent } from '@pallas/protocol';
import { EventBus, type NumberedEvent } from '../src/services/live/event-bus.js';

const ev = (i: number) => ({ type: 'device', device: { id: `d${i}` } }) as unknown as LiveEvent;

test('event bus: numbers events, replays what is still kept, says when some are gone', () => {
  const bus = new EventBus(4, 'e1');
  const seen: string[] = [];
  const unsubscribe = bus.subscribe((e) => seen.push(e.id));
  for (let i = 1; i <= 3; i++) bus.emit(ev(i));
  assert.deepEqual(seen, ['e1.1', 'e1.2', 'e1.3']);
  assert.deepEqual(bus.since('e1.0')?.map((e) => e.id), ['e1.1', 'e1.2', 'e1.3']);
  assert.deepEqual(bus.since('e1.2')?.map((e) => e.id), ['e1.3']);
  assert.deepEqual(bus.since('e1.3'), []);
  assert.equal(bus.since('e1.99'), null, 'an id from the future is from an earlier life of this epoch: reload');

  // Past capacity the oldest fall out of the ring.
  for (let i = 4; i <= 10; i++) bus.emit(ev(i));
  assert.deepEqual(bus.since('e1.6')?.map((e) => e.id), ['e1.7', 'e1.8', 'e1.9', 'e1.10']);
  assert.equal(bus.since('e1.5'), null, 'event 6 is gone: the client must reload');
  assert.equal(bus.since('e1.0'), null);
  unsubscribe();
  bus.emit(ev(11));
  assert.equal(seen.length, 10, 'no delivery after unsubscribe');
  assert.equal(bus.listenerCount, 0);
});

test('event bus: an id of another epoch (another manager, or before a restart) means reload', () => {
  const bus = new EventBus(4, 'aaaa');
  bus.emit(ev(1));
  assert.equal(bus.since('bbbb.1'), null);
  assert.equal(bus.since('1'), null);
  assert.equal(bus.since('aaaa.x'), null);
  assert.equal(bus.since(''), null);
});

test('event bus: relays what is emitted here, not what was delivered from elsewhere', () => {
  const bus = new EventBus(8, 'e');
  const relayed: NumberedEvent[] = [];
  const seen: string[] = [];
  bus.relay = (e) => relayed.push(e);
  bus.subscribe((e) => seen.push(e.id));
  bus.emit(ev(1));
  bus.deliver(ev(2));
  bus.deliver({ type: 'reset' });
  assert.equal(relayed.length, 1);
  assert.deepEqual(seen, ['e.1', 'e.2', 'e.3'], 'delivered events are numbered and kept like our own');
  assert.deepEqual(bus.since('e.1')?.map((e) => e.event.type), ['device', 'reset']);
});

test('event bus: says which kinds of event its listeners want; events passed over unread make an earlier id reload', () => {
  const bus = new EventBus(8, 'e');
  assert.equal(bus.wants('task'), false, 'no listener');
  let rolloutOpen = false;
  const inventory = bus.subscribe(() => {}, (type) => type === 'vms');
  bus.subscribe(() => {}, (type) => type === 'task' && rolloutOpen);
  assert.deepEqual([bus.wants('vms'), bus.wants('task'), bus.wants('device')], [true, false, false]);
  rolloutOpen = true;
  assert.equal(bus.wants('task'), true, 'asked again at every event');
  rolloutOpen = false;
  const stream = bus.subscribe(() => {});
  assert.equal(bus.wants('rollout'), true, 'a listener without a filter wants everything');
  stream();
  inventory();

  bus.deliver(ev(1));
  bus.deliver(ev(2));
  bus.passedOver();
  bus.deliver(ev(3));
  assert.equal(bus.since('e.1'), null, 'e.2 was followed by events nobody here read: reload');
  assert.equal(bus.since('e.2'), null);
  assert.deepEqual(bus.since('e.3'), [], 'a client that saw e.3 came after them');
});

test('event bus: an event is serialized once for every client and the relay, then kept as its JSON alone', () => {
  const bus = new EventBus(8, 'e');
  let stringified = 0;
  const event = { type: 'device', device: { id: 'd1', toJSON() { stringified++; return { id: 'd1' }; } } } as unknown as LiveEvent;
  const texts: string[] = [];
  for (let i = 0; i < 3; i++) bus.subscribe((e) => texts.push(e.json));
  let relayed = '';
  bus.relay = (e) => { relayed = e.json; };
  bus.emit(event);
  assert.equal(stringified, 1, 'three stream clients and the relay, one JSON.stringify');
  assert.deepEqual(texts, Array(3).fill('{"type":"device","device":{"id":"d1"}}'));
  assert.equal(relayed, texts[0]);
  const kept = bus.since('e.0')![0]!;
  assert.notEqual(kept.event, event, 'the object was let go; read again from the JSON');
  assert.deepEqual(kept.event, { type: 'device', device: { id: 'd1' } });
  // Nobody serialized it: kept as it is, never stringified.
  bus.relay = undefined;
  const quiet = new EventBus(8, 'q');
  quiet.emit(event);
  assert.equal(quiet.since('q.0')![0]!.event, event);
  assert.equal(stringified, 1);
});

test('event bus: relayed JSON of a known type is parsed only when read; listeners get the types they want, and every reset', () => {
  const bus = new EventBus(8, 'e');
  const inventory: string[] = [];
  const all: string[] = [];
  bus.subscribe((e) => inventory.push(e.type), (type) => type === 'vms');
  bus.subscribe((e) => all.push(e.type));
  // Not JSON at all: nothing here reads it, so nothing fails.
  bus.deliverJson('{"type":"task", not read', 'task');
  bus.deliverJson('{"type":"vms","deviceId":"d1","vms":[]}');
  bus.deliver({ type: 'reset' });
  assert.deepEqual(inventory, ['vms', 'reset'], 'a task event is not handed to a listener of inventories');
  assert.deepEqual(all, ['task', 'vms', 'reset']);
  const [task, vms] = bus.since('e.0')!;
  assert.equal(task!.json, '{"type":"task", not read');
  assert.throws(() => task!.event, SyntaxError, 'parsed when read');
  assert.deepEqual(vms!.event, { type: 'vms', deviceId: 'd1', vms: [] }, 'without a type, parsed at once to know it');
});
