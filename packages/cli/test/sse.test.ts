import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SseMessage, SseParser } from '../src/sse.js';

/** Feed text in the given pieces and collect every event. */
function parse(pieces: string[], parser = new SseParser()): SseMessage[] {
  return pieces.flatMap((p) => parser.push(p));
}

const STREAM =
  'retry: 2000\n: connected\n\n' +
  'id: 1\nevent: task\ndata: {"a":1}\n\n' +
  ': keepalive\n\n' +
  'id: 2\nevent: task\ndata: {\ndata:   "b": 2\ndata: }\n\n' +
  'data:no-space\n\n';

const EXPECTED: SseMessage[] = [
  { event: 'task', data: '{"a":1}', id: '1' },
  { event: 'task', data: '{\n  "b": 2\n}', id: '2' },
  { event: 'message', data: 'no-space', id: '2' },
];

test('events, ids, comments, multi-line data and the default event type', () => {
  const p = new SseParser();
  assert.deepEqual(parse([STREAM], p), EXPECTED);
  assert.equal(p.lastEventId, '2');
  assert.equal(p.retryMs, 2000);
});

test('the same events whatever the chunk boundaries (every split point, and one char at a time)', () => {
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parse([STREAM.slice(0, i), STREAM.slice(i)]), EXPECTED, `split at ${i}`);
  }
  assert.deepEqual(parse([...STREAM]), EXPECTED);
});

test('CRLF and lone CR line endings, also with CR and LF in different chunks', () => {
  const crlf = STREAM.replace(/\n/g, '\r\n');
  const cr = STREAM.replace(/\n/g, '\r');
  for (const text of [crlf, cr]) {
    for (let i = 0; i <= text.length; i++) {
      assert.deepEqual(parse([text.slice(0, i), text.slice(i)]), EXPECTED, `split at ${i}`);
    }
  }
  // "\r" then "\n" in the next chunk is one line end, not a line end and an empty line.
  assert.deepEqual(parse(['data: x\r', '\ndata: y\r\n\r\n']), [{ event: 'message', data: 'x\ny', id: '' }]);
});

test('a leading BOM, fields without a colon, unknown fields, bad retry and NUL ids are handled as the spec says', () => {
  const p = new SseParser();
  const out = parse(['\uFEFFdata\nfoo: bar\nretry: soon\nid: a\0b\ndata: z\n\n'], p);
  assert.deepEqual(out, [{ event: 'message', data: '\nz', id: '' }]);
  assert.equal(p.retryMs, undefined);
});

test('no dispatch without data; an id-only block still moves the id; an unterminated event is not emitted', () => {
  const p = new SseParser();
  assert.deepEqual(parse(['id: 7\n\nevent: task\n\n', 'data: half'], p), []);
  assert.equal(p.lastEventId, '7');
  // After a reconnect, the half event is dropped but the id is kept.
  p.reset();
  assert.deepEqual(parse(['data: whole\n\n'], p), [{ event: 'message', data: 'whole', id: '7' }]);
});
