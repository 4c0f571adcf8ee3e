import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LiveEvent } from '@pallas/protocol';
import { EventBus } from '../src/services/live/event-bus.js';

const ev = (i: number) => ({ type: 'device', device: { id: `d${i}` } }) as unknown as LiveEvent;

test('event bus: numbers events, replays what is still kept, says when some are gone', () => {
  const bus = new EventBus(4);
  const seen: number[] = [];
  const unsubscribe = bus.subscribe((e) => seen.push(e.id));
  for (let i = 1; i <= 3; i++) bus.emit(ev(i));
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(bus.since(0)?.map((e) => e.id), [1, 2, 3]);
  assert.deepEqual(bus.since(2)?.map((e) => e.id), [3]);
  assert.deepEqual(bus.since(3), []);
  assert.deepEqual(bus.since(99), []);

  // Past capacity the oldest fall out of the ring.
  for (let i = 4; i <= 10; i++) bus.emit(ev(i));
  assert.deepEqual(bus.since(6)?.map((e) => e.id), [7, 8, 9, 10]);
  assert.equal(bus.since(5), null, 'event 6 is gone: the client must reload');
  assert.equal(bus.since(0), null);
  unsubscribe();
  bus.emit(ev(11));
  assert.equal(seen.length, 10, 'no delivery after unsubscribe');
  assert.equal(bus.listenerCount, 0);
});
