import fc from 'fast-check';

/**
 * What the fuzzers share (docs/testing.md, "Fuzzing"): one seed per run, printed, that replays
 * the run; a failing case reported with its property, seed and path and the command that
 * replays just it; and text generators that reach past printable ASCII, which is all that
 * fast-check's `fc.string()` yields.
 */

/** The run's seed: PALLAS_FUZZ_SEED to replay a run, else a fresh one. */
export const FUZZ_SEED = Number(process.env.PALLAS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** `<label>:<path>` from a failure report: replays that one case of that property. */
const REPLAY = process.env.PALLAS_FUZZ_PATH;

/** Prints the seed (once per file) with the command that replays the run. */
export function announceFuzzSeed(file: string): void {
  console.log(`# fuzz seed ${FUZZ_SEED} (replay this run: PALLAS_FUZZ_SEED=${FUZZ_SEED} node scripts/run-tests.mjs ${file})`);
}

/**
 * `fc.assert` with the run's seed. The property asserts inside each case, so the first bad
 * case stops the run there and is shrunk; the error names the property, the seed and the
 * path, and the environment that replays only that case.
 */
export async function fuzz<T>(label: string, arbitrary: fc.Arbitrary<T>, body: (value: T) => Promise<void>, options: { numRuns: number; file: string }): Promise<void> {
  const path = REPLAY?.startsWith(`${label}:`) ? REPLAY.slice(label.length + 1) : undefined;
  if (REPLAY !== undefined && path === undefined) return; // replaying another property's case
  const details = await fc.check(fc.asyncProperty(arbitrary, body), { numRuns: options.numRuns, seed: FUZZ_SEED, ...(path !== undefined ? { path } : {}) });
  if (!details.failed) return;
  const replay = `PALLAS_FUZZ_SEED=${details.seed} PALLAS_FUZZ_PATH='${label}:${details.counterexamplePath}' node scripts/run-tests.mjs ${options.file}`;
  const error = details.errorInstance;
  throw new Error(
    `fuzz property "${label}" failed after ${details.numRuns} case(s) (seed ${details.seed}, path ${details.counterexamplePath})\n`
    + `replay: ${replay}\n`
    + `case: ${fc.stringify(details.counterexample)}\n`
    + `${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}

/** C0 and C1 controls, CR/LF in every combination, NUL, DEL, BOM, Unicode line breaks, noncharacters and lone surrogates. */
export const controlText = fc.constantFrom(
  '\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\u000b', '\f', '\r', '\r\n', '\n\r', '\u001b', '\u001f', '\u007f',
  '\u0085', '\u009f', '\u00a0', '\u200b', '\u200e', '\u2028', '\u2029', '\ufeff', '\ufffe', '\uffff', '\ud800', '\udfff',
);

/**
 * Text over all of Unicode: any code point (astral planes, unpaired surrogates), grapheme
 * clusters (combining marks, emoji sequences), ASCII, and control characters, mixed.
 */
export function anyText(maxLength = 64): fc.Arbitrary<string> {
  const piece = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.string({ unit: 'grapheme', maxLength: 4 }),
    fc.string({ maxLength: 8 }),
    controlText,
  );
  return fc.array(piece, { maxLength: Math.max(1, Math.ceil(maxLength / 4)) }).map((parts) => parts.join('').slice(0, maxLength));
}

/** Every path to a value inside a JSON-like value: object keys and array indices, at any depth. */
export function pathsOf(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
}

/** A deep copy of `value` with the value at `path` replaced, or removed when `replacement` is `undefined`. */
export function withValueAt(value: unknown, path: Array<string | number>, replacement: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (replacement === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else {
    node[last] = replacement;
  }
  return copy;
}

/** `valid` with one value at any depth changed to one of `values`, or removed. */
export function mutatedDeep(valid: unknown, values: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const paths = pathsOf(valid);
  return fc.tuple(fc.constantFrom(...paths), fc.option(values, { nil: undefined, freq: 6 }))
    .map(([path, v]) => withValueAt(valid, path, v));
}
