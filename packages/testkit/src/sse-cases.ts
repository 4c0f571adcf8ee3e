import fc from 'fast-check';
import { anyText } from './fuzz.js';

/** One event as a server means it: its name, id and data lines (for SSE parsers' property tests). */
export interface SseCase {
  event: string | undefined;
  id: string | undefined;
  lines: string[];
}

/** Text that fits in one SSE field: all of Unicode (U+2028, U+0085, NUL, lone surrogates…) but CR and LF. */
const fieldText = (maxLength: number) => anyText(maxLength).map((s) => s.replace(/[\r\n]/g, ''));

/**
 * A stream of events written with a random line ending per line (LF, CRLF or lone CR), with
 * comments between them, cut into random chunks (CR and LF of one CRLF may land in two).
 */
export const sseStreams: fc.Arbitrary<{ events: SseCase[]; chunks: string[] }> = fc.array(
  fc.record({
    event: fc.option(fieldText(12).filter((s) => s !== ''), { nil: undefined }),
    id: fc.option(fieldText(12).map((s) => s.replace(/\0/g, '')), { nil: undefined }),
    lines: fc.array(fieldText(40), { minLength: 1, maxLength: 3 }),
  }),
  { minLength: 1, maxLength: 6 },
).chain((events) => {
  const fields = events.flatMap((e) => [
    ...(e.id !== undefined ? [`id: ${e.id}`] : []),
    ...(e.event !== undefined ? [`event: ${e.event}`] : []),
    ...e.lines.map((l) => `data: ${l}`),
    ': a comment',
    '',
  ]);
  return fc.tuple(fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: fields.length, maxLength: fields.length }), fc.array(fc.nat(), { maxLength: 8 }))
    .map(([endings, cuts]) => {
      // A lone CR, then an empty line ended by LF, would read as one CRLF: write CRLF there.
      for (let i = 0; i + 1 < fields.length; i++) if (endings[i] === '\r' && fields[i + 1] === '' && endings[i + 1] === '\n') endings[i + 1] = '\r\n';
      const text = fields.map((f, i) => f + endings[i]).join('');
      const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...at].map((from, i) => text.slice(from, [...at, text.length][i]));
      return { events, chunks };
    });
});
