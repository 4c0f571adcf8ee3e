import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * A compiled checker for one schema. Compiling once per schema keeps validation of
 * thousands of status messages per second cheap.
 */
export interface Checker<S extends TSchema> {
  check(value: unknown): value is Static<S>;
  /** First problem as "path: message", for logs and API errors. */
  explain(value: unknown): string;
  /** Validate an already-decoded value. */
  validate(value: unknown): ParseResult<Static<S>>;
  /** Decode JSON text or bytes, then validate. */
  parseJson(raw: string | Uint8Array): ParseResult<Static<S>>;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function checker<S extends TSchema>(schema: S): Checker<S> {
  // Compiled at the first check, not here: modules make their checkers at import, and an
  // agent uses a few of them (docs/benchmarks.md, "Agent footprint").
  let compiledOnce: { Check(value: unknown): boolean; Errors(value: unknown): Iterable<{ instancePath: string; keyword: string; message: string; params: unknown }> } | undefined;
  const compile = () => (compiledOnce ??= Compile(schema as TSchema));
  const compiled = { Check: (value: unknown) => compile().Check(value), Errors: (value: unknown) => compile().Errors(value) };
  const explain = (value: unknown): string => {
    for (const e of compiled.Errors(value)) {
      const path = e.instancePath === '' ? '(root)' : e.instancePath.slice(1).replaceAll('/', '.');
      const extra = e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperties?: string[] }).additionalProperties?.join(', '))})`
        : '';
      return `${path}: ${e.message}${extra}`;
    }
    return 'invalid';
  };
  const validate = (value: unknown): ParseResult<Static<S>> =>
    compiled.Check(value) ? { ok: true, value: value as Static<S> } : { ok: false, error: explain(value) };
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    explain,
    validate,
    parseJson(raw) {
      let value: unknown;
      try {
        value = JSON.parse(typeof raw === 'string' ? raw : decoder.decode(raw));
      } catch {
        return { ok: false, error: 'payload is not valid UTF-8 JSON' };
      }
      return validate(value);
    },
  };
}
