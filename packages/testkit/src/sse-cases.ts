import fc from 'fast-check';
import { anyText } from './fuzz.js';

/** One event as a server means it (for SSE parsers' property tests). */
export interface SseCase {
  /** Its `event:` name; undefined: none (the default type, `message`). */
  event: string | undefined;
  /** Its `id:`; undefined: none (the last id stays). One holding NUL is ignored, as the spec says. */
  id: string | undefined;
  /** Its data lines: the event's data is them joined with LF. */
  lines: string[];
  /** The `retry:` values written in its block, in order: ASCII digits only are valid, the rest is ignored. */
  retry: string[];
}

/** A stream as written, and as it comes: in chunks. */
export interface SseStream {
  events: SseCase[];
  /** The whole stream (sometimes with a BOM first). */
  text: string;
  /**
   * `text` cut anywhere: between the CR and the LF of a CRLF, between the halves of a surrogate
   * pair, sometimes after every character.
   */
  chunks: string[];
  /** Each event's block as written: its lines (fields, comments, retries, unknown fields) and its blank line. */
  blocks: string[];
  /** After the last event: one unfinished (its lines, no blank line), never to be dispatched; often ''. */
  trailing: string;
}

/** Text that fits in one SSE field: all of Unicode (U+2028, U+0085, NUL, lone surrogates…) but CR and LF. */
const fieldText = (maxLength: number) => anyText(maxLength).map((s) => s.replace(/[\r\n]/g, ''));

/** `name: value`, or `name:value` when that reads the same (the one space after the colon is not part of the value), or `name` alone for ''. */
const field = (name: string, value: string): fc.Arbitrary<string> => fc.constantFrom(
  `${name}: ${value}`,
  ...(value.startsWith(' ') ? [] : [`${name}:${value}`]),
  ...(value === '' ? [name] : []),
);

/** `retry:` values: valid (ASCII digits, huge ones too) and not (signs, decimals, spaces, other digits). */
const retryValue = fc.oneof(
  fc.integer({ min: 0, max: 60 }).map(String),
  fc.constantFrom('007', '99999999999999999999'),
  fc.constantFrom('', '-1', '+5', '1.5', ' 7', '7 ', 'x', '1e3', '0x10', '\u0661\u0662', '\uff11\uff12', '5\u0000'),
);

/** A line that is neither a field of the event nor a line end: a comment, a `retry:`, an unknown field. */
const extraLine = fc.oneof(
  fc.record({ kind: fc.constant('comment' as const), line: fieldText(30).map((t) => `:${t}`) }),
  fc.record({ kind: fc.constant('retry' as const), value: retryValue }).map((r) => ({ ...r, line: `retry: ${r.value}` })),
  fc.record({
    kind: fc.constant('unknown' as const),
    line: fc.tuple(fc.constantFrom('foo', 'Data', 'ID', 'dat', 'events', 'data ', ' data', 'retry ', 'idd', 'Event'), fieldText(20))
      .map(([name, value]) => (name === 'foo' && value === '' ? name : `${name}: ${value}`)),
  }),
);

/** The event's lines in an order a server may use: data lines in order, the rest anywhere among them. */
function blockLines(e: { event: string | undefined; id: string | undefined; lines: string[] }): fc.Arbitrary<{ lines: string[]; retry: string[] }> {
  const data = fc.tuple(...e.lines.map((l) => field('data', l)));
  const others = fc.tuple(
    e.id !== undefined ? field('id', e.id) : fc.constant(undefined),
    e.event !== undefined ? field('event', e.event) : fc.constant(undefined),
    fc.array(extraLine, { maxLength: 3 }),
  );
  return fc.tuple(data, others, fc.array(fc.nat(), { minLength: 5, maxLength: 5 })).map(([dataLines, [id, event, extras], at]) => {
    const lines = [...dataLines];
    const insert = (line: string, k: number) => lines.splice(at[k % at.length]! % (lines.length + 1), 0, line);
    if (id !== undefined) insert(id, 0);
    if (event !== undefined) insert(event, 1);
    extras.forEach((x, k) => insert(x.line, 2 + k));
    // Lines keep their relative order only among data lines; retries are read in the order written.
    const retry = lines.flatMap((l) => (l.startsWith('retry: ') ? [l.slice('retry: '.length)] : []));
    return { lines, retry };
  });
}

/**
 * A stream of events: data lines (one or more, possibly empty, any Unicode but CR/LF), ids
 * (empty ones, ones holding NUL), names, comments, `retry:` lines valid and not, unknown fields,
 * each field with and without the space after the colon, in any order within its event; each
 * line ended by LF, CRLF or a lone CR at random; sometimes a BOM first and an unfinished event
 * last; all of it cut into chunks anywhere.
 */
export const sseStreams: fc.Arbitrary<SseStream> = fc.array(
  fc.record({
    event: fc.option(fieldText(12).filter((s) => s !== ''), { nil: undefined }),
    id: fc.option(fc.oneof({ weight: 6, arbitrary: fieldText(12).map((s) => s.replace(/\0/g, '')) }, { weight: 1, arbitrary: fieldText(12).map((s) => `${s}\0`) }), { nil: undefined }),
    lines: fc.array(fieldText(40), { minLength: 1, maxLength: 3 }),
  }),
  { minLength: 1, maxLength: 6 },
).chain((cases) => fc.tuple(
  fc.tuple(...cases.map((c) => blockLines(c))),
  fc.option(fc.array(fieldText(20).chain((l) => field('data', l)), { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 3 }),
  fc.boolean(),
  fc.boolean(),
).chain(([blocks, trailingLines, bom, openLastLine]) => {
  // Every line of the stream, and which event's block (or the trailing part, -1) it belongs to.
  const lines: Array<{ text: string; of: number }> = [
    ...blocks.flatMap((b, i) => [...b.lines, ''].map((text) => ({ text, of: i }))),
    ...(trailingLines ?? []).map((text) => ({ text, of: -1 })),
  ];
  return fc.tuple(
    fc.array(fc.constantFrom<string>('\n', '\r\n', '\r'), { minLength: lines.length, maxLength: lines.length }),
    fc.oneof({ weight: 7, arbitrary: fc.array(fc.nat(), { maxLength: 16 }) }, { weight: 1, arbitrary: fc.constant('every' as const) }),
  ).map(([endings, cuts]) => {
    // A lone CR, then an empty line ended by LF, would read as one CRLF: write CRLF there.
    for (let i = 0; i + 1 < lines.length; i++) if (endings[i] === '\r' && lines[i + 1]!.text === '' && endings[i + 1] === '\n') endings[i + 1] = '\r\n';
    // The unfinished event's last line may also lack its line end.
    if (trailingLines && openLastLine) endings[lines.length - 1] = '';
    const written = lines.map((l, i) => l.text + endings[i]);
    const text = (bom ? '\ufeff' : '') + written.join('');
    const blockText = blocks.map((_, b) => written.filter((_w, i) => lines[i]!.of === b).join(''));
    const trailing = written.filter((_w, i) => lines[i]!.of === -1).join('');
    const at = cuts === 'every'
      ? Array.from({ length: Math.max(0, text.length - 1) }, (_, i) => i + 1)
      : [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
    const bounds = [0, ...at, text.length];
    const chunks = bounds.slice(0, -1).map((from, i) => text.slice(from, bounds[i + 1])).filter((c) => c !== '');
    const events = cases.map((c, i) => ({ ...c, retry: blocks[i]!.retry }));
    return { events, text, chunks, blocks: blockText, trailing };
  });
}));
