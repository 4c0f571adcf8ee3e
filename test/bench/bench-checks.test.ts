/**
 * The benchmark's own sanity checks and the light simulator's framing: a figure that cannot be
 * a result must fail instead of printing, and packets split across TCP chunks must be read whole.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from 'mqtt-packet';
import { memorySlope } from '../../bench/lib/memory.js';
import { rampStatus } from '../../bench/lib/status-ramp.js';
import { readPackets, PUBACK, PUBLISH, type Incoming } from '../../bench/lib/light-fleet/mqtt-wire.js';

const MB = 2 ** 20;

describe('memorySlope', () => {
  it('gives the slope and a small spread for points on a line', () => {
    const s = memorySlope([{ devices: 1000, rssBytes: 100 * MB + 16e6 }, { devices: 5000, rssBytes: 100 * MB + 80e6 }, { devices: 10000, rssBytes: 100 * MB + 160e6 }]);
    assert.equal(Math.round(s.perDevice), 16000);
    assert.ok(s.spread < 1);
    assert.equal(s.failed, undefined);
  });

  it('fails a negative slope (the -31.3 KB of issue #20)', () => {
    const s = memorySlope([{ devices: 1000, rssBytes: 200 * MB }, { devices: 2000, rssBytes: 190 * MB }, { devices: 3000, rssBytes: 185 * MB }]);
    assert.match(s.failed ?? '', /not positive/);
  });

  it('fails a slope whose spread exceeds it', () => {
    const s = memorySlope([{ devices: 1000, rssBytes: 100 * MB }, { devices: 2000, rssBytes: 160 * MB }, { devices: 3000, rssBytes: 101 * MB }]);
    assert.match(s.failed ?? '', /spread/);
  });

  it('fails with fewer than three sizes', () => {
    assert.match(memorySlope([{ devices: 1, rssBytes: 1 }, { devices: 2, rssBytes: 2 }]).failed ?? '', /at least 3/);
  });
});

describe('readPackets', () => {
  it('reads packets split anywhere across chunks, the tail kept for the next one', () => {
    const bytes = Buffer.concat([
      generate({ cmd: 'puback', messageId: 7 }),
      generate({ cmd: 'publish', topic: 'pallas/v1/d/x/cmd/task', payload: Buffer.alloc(300, 'a'), qos: 1, messageId: 9, retain: false, dup: false }),
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const got: Incoming[] = [];
      const tail = readPackets(bytes.subarray(0, cut), (p) => got.push(p));
      const rest = tail ? Buffer.concat([tail, bytes.subarray(cut)]) : bytes.subarray(cut);
      assert.equal(readPackets(rest, (p) => got.push(p)), undefined);
      assert.deepEqual(got.map((p) => [p.type, p.id]), [[PUBACK, 7], [PUBLISH, 9]]);
      assert.equal(got[1]!.payload!.length, 300);
      assert.equal(got[1]!.topic, 'pallas/v1/d/x/cmd/task');
    }
  });
});

describe('rampStatus', () => {
  /**
   * A receiver that takes `capacity` messages a second: what it cannot take piles up and is
   * counted later, as a manager falling behind does.
   */
  function receiver(capacity: number) {
    let done = 0;
    let queue = 0;
    let last = performance.now();
    const advance = () => {
      const now = performance.now();
      const take = Math.min(queue, (capacity * (now - last)) / 1000);
      done += take;
      queue -= take;
      last = now;
    };
    return {
      offer: async (rate: number, seconds: number) => {
        advance();
        queue += rate * seconds;
        await sleep(seconds * 1000);
        return { offered: rate * seconds, sendSeconds: seconds };
      },
      count: async () => (advance(), Math.floor(done)),
    };
  }

  it('bisects between the last step kept up with and the first not, and counts no backlog in a later step', async () => {
    const r = receiver(15_000);
    const ladder = [4000, 8000, 16000, 32000];
    const ramp = await rampStatus((rate) => r.offer(rate, 0.5), r.count, 0.5, ladder, 200);
    const offered = ramp.steps.map((s) => s.offered / 0.5);
    assert.equal(ramp.steps.length, offered.indexOf(32000) + 3, 'two bisection steps after the ladder stopped');
    for (const rate of offered.slice(-2)) assert.ok(rate > 16000 && rate < 32000, `bisection step ${rate} lies between the steps`);
    // Nothing the receiver fell behind on is counted in the step after it.
    for (const s of ramp.steps) assert.ok(s.counted <= s.offered, `step ${s.offered}: ${s.counted} counted`);
    assert.ok(ramp.highestKeptUp > 13_000 && ramp.highestKeptUp < 17_000, `figure ${ramp.highestKeptUp} near the capacity`);
  });
});
