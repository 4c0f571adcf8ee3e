/**
 * Property test of @pallas/client's event-stream follower (issue #21 point 7; docs/testing.md,
 * "Fuzzing"): testkit's `sseStreams` writes streams as any server may (LF, CRLF or lone CR per
 * line, comments, multi-line and empty data, ids empty or holding NUL, names, `retry:` valid
 * and not, unknown fields, a BOM, an unfinished event at the end), its chunks are cut again
 * into bytes anywhere (inside UTF-8 characters too), and the follower reads them from a
 * connection that then ends. Per case:
 * - the events come out whole, in order, with the id to resume from, nothing else;
 * - with a buffer cap, they are the events before the first one bigger than the cap (an event
 *   that fits never breaks the connection), and the follower drops the connection there;
 * - it reconnects sending back the last id verbatim (none: it says events may be missed);
 * - it waits before reconnecting at least half of the last valid `retry:` (capped), so an
 *   invalid one was ignored.
 * The seed is printed; a failure names the case and the command that replays it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { RECONNECTED_WITHOUT_ID, followEventStream, type SseMessage } from '@pallas/client';
import { announceFuzzSeed, fuzz, sseStreams, type SseStream } from '@pallas/testkit';

const FILE = 'packages/client/test/event-stream-property.test.ts';
const RUNS = Number(process.env.PALLAS_FUZZ_RUNS ?? 300);
/** The follower's back-off here: the first delay without `retry:`, and the longest. */
const RETRY_MS = 10;
const MAX_RETRY_MS = 40;
/** The follower's floor under any delay (`retry: 0` must not become a busy loop). */
const MIN_RETRY_MS = 10;

/** What a string is once it went through UTF-8: lone surrogates become U+FFFD; a BOM inside stays. */
const wire = (s: string): string => new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(s));

/**
 * The byte offset in `text`'s UTF-8 of each of its string offsets (0 … length). Inside a
 * surrogate pair it is the middle of the character's four bytes: a cut there splits it.
 */
function byteOffsets(text: string): number[] {
  const out = [0];
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out.push(bytes + 2, bytes + 4);
      bytes += 4;
      i++;
    } else {
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3; // a lone surrogate is written as U+FFFD: 3 bytes
      out.push(bytes);
    }
  }
  return out;
}

/** The stream's bytes, cut where its chunks are cut and at `extra` byte offsets besides. */
function bytePieces(stream: SseStream, extra: number[]): Uint8Array[] {
  const bytes = new TextEncoder().encode(stream.text);
  const offsets = byteOffsets(stream.text);
  assert.equal(offsets.at(-1), bytes.length, 'byte offsets add up');
  const cuts = new Set(extra.map((n) => n % (bytes.length + 1)));
  let at = 0;
  for (const chunk of stream.chunks) {
    at += chunk.length;
    cuts.add(offsets[at]!);
  }
  const bounds = [0, ...[...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  return bounds.slice(0, -1).map((from, i) => bytes.subarray(from, bounds[i + 1]));
}

/** What the follower must make of the whole stream: its messages, and the last valid `retry:`. */
function expected(stream: SseStream): { messages: SseMessage[]; retryMs: number | undefined } {
  let id = '';
  let retryMs: number | undefined;
  const messages = stream.events.map((e) => {
    for (const r of e.retry) if (/^[0-9]+$/.test(r)) retryMs = Number.parseInt(r, 10);
    if (e.id !== undefined && !e.id.includes('\0')) id = wire(e.id);
    return { event: e.event === undefined ? 'message' : wire(e.event), data: e.lines.map(wire).join('\n'), id };
  });
  return { messages, retryMs };
}

/** Rejects with `what` if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

before(() => announceFuzzSeed(FILE));

describe('event-stream follower, property-based', () => {
  it('reads any stream in any chunking: every event whole and in order, the buffer cap, the id to resume from, retry', async () => {
    const cases = fc.tuple(
      sseStreams,
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.option(fc.integer({ min: 16, max: 400 }), { nil: undefined, freq: 2 }),
    );
    /** What the cases reached, so that a generator gone narrow cannot pass unnoticed. */
    const seen = { cases: 0, droppedAtCap: 0, resumedWithId: 0, resumedWithoutId: 0, retryTimed: 0, validRetry: 0, loneCrLast: 0 };
    await fuzz('SSE follower', cases, async ([stream, byteCuts, cap]) => {
      const pieces = bytePieces(stream, byteCuts);
      const want = expected(stream);
      /** When the first connection's body ended (read to its end), and each connection made. */
      let ended: number | undefined;
      const connections: Array<{ lastEventId: string; at: number }> = [];
      let reconnected!: () => void;
      const second = new Promise<void>((resolve) => { reconnected = resolve; });
      const follower = followEventStream(async (lastEventId) => {
        connections.push({ lastEventId, at: performance.now() });
        if (connections.length === 1) {
          let i = 0;
          return new ReadableStream<Uint8Array>({
            pull(controller) {
              if (i < pieces.length) controller.enqueue(pieces[i++]!);
              else {
                ended = performance.now();
                controller.close();
              }
            },
          });
        }
        reconnected();
        return new ReadableStream<Uint8Array>(); // open and silent, until the test closes it
      }, { retryMs: RETRY_MS, maxRetryMs: MAX_RETRY_MS, idleTimeoutMs: 60_000, ...(cap !== undefined ? { maxEventChars: cap } : {}) });
      const got: SseMessage[] = [];
      let marker = false;
      try {
        const reading = (async () => {
          for await (const m of follower) {
            if (m.event === RECONNECTED_WITHOUT_ID) {
              marker = true;
              return;
            }
            got.push(m);
          }
        })();
        await within(second, 5000, 'reconnection after the stream ended');
        // With an id to resume from nothing more comes; without one, the follower says so first.
        if (connections[1]!.lastEventId !== '') follower.close();
        await within(reading, 5000, 'end of iteration');
      } finally {
        follower.close();
      }

      const k = got.length;
      seen.cases++;
      if (k < want.messages.length) seen.droppedAtCap++;
      if (connections[1]!.lastEventId === '') seen.resumedWithoutId++;
      else seen.resumedWithId++;
      if (want.retryMs !== undefined) seen.validRetry++;
      if (stream.blocks.at(-1)!.endsWith('\r') && stream.trailing === '') seen.loneCrLast++;
      assert.deepEqual(got, want.messages.slice(0, k), 'the events, whole and in order, each with the last id so far');
      const fits = (text: string) => cap === undefined || text.length <= cap;
      if (k < want.messages.length) {
        assert.ok(cap !== undefined, `events ${k + 1}… lost without a buffer cap`);
        assert.ok(!fits(stream.blocks[k]!), `event ${k + 1} (${stream.blocks[k]!.length} characters) was dropped, yet fits in the cap of ${cap}`);
      }
      if (stream.blocks.every(fits) && fits(stream.trailing)) assert.equal(k, want.messages.length, 'every event fits: every event comes');
      const resumeFrom = k > 0 ? got[k - 1]!.id : '';
      assert.equal(connections[1]!.lastEventId, resumeFrom, 'reconnects sending the last id back verbatim');
      assert.equal(marker, resumeFrom === '', 'says events may be missed exactly when it has no id to resume from');
      if (k === want.messages.length && ended !== undefined) {
        // A connection that delivered events: the first delay, at least half of the cap of the
        // server's last valid retry (or the default) under MAX_RETRY_MS.
        const capped = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, want.retryMs ?? RETRY_MS));
        const waited = connections[1]!.at - ended;
        assert.ok(waited >= capped / 2 - 2, `reconnected after ${waited.toFixed(1)} ms; the last valid retry (${want.retryMs ?? 'none'}) asks for at least ${capped / 2} ms`);
        seen.retryTimed++;
      }
    }, { numRuns: RUNS, file: FILE });
    console.log(`# SSE follower: ${JSON.stringify(seen)}`);
    // Not when replaying one case (PALLAS_FUZZ_PATH), nor on a run too short to reach them all.
    if (process.env.PALLAS_FUZZ_PATH === undefined && RUNS >= 100) {
      for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no case reached ${what}: ${JSON.stringify(seen)}`);
    }
  });
});
