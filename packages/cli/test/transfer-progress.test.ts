import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransferProgress, transferLine } from '../src/output/transfer-progress.js';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { out: { write: (s: string) => writes.push(s), isTTY, columns: 100 }, writes };
}

describe('transfer progress', () => {
  it('shows percent, bytes and rate', () => {
    assert.equal(transferLine(512 * 1024 ** 2, 1024 ** 3, 2000, false), '50%  512 MiB / 1 GiB  256 MiB/s');
    assert.match(transferLine(1024 ** 3, 1024 ** 3, 1000, true), /^\[#{24}\] 100%  1 GiB \/ 1 GiB  1 GiB\/s$/);
  });

  it('redraws one line on a terminal, at most every 100 ms, and always the last update', () => {
    const { out, writes } = sink(true);
    let now = 0;
    const p = new TransferProgress(out, {}, () => now);
    now = 150;
    p.update(10, 100);
    now = 160;
    p.update(20, 100); // too soon: skipped
    now = 170;
    p.update(100, 100); // the end is always drawn
    p.done();
    assert.equal(writes.length, 3);
    assert.ok(writes[0]!.startsWith('\r\x1b[2K['));
    assert.match(writes[1]!, /100%/);
    assert.equal(writes[2], '\n');
  });

  it('prints a plain line per 10% elsewhere, without escape codes', () => {
    const { out, writes } = sink(false);
    const p = new TransferProgress(out, {}, () => 1000);
    for (let done = 0; done <= 1000; done += 7) p.update(done, 1000);
    p.update(1000, 1000);
    p.done();
    assert.equal(writes.length, 11);
    assert.ok(writes.every((w) => w.startsWith('uploaded ') && !w.includes('\x1b')));
    assert.match(writes.at(-1)!, /^uploaded 100%/);
  });
});
