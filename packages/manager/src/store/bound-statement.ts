import type { CompiledQuery } from 'kysely';

const MARK = '\u0000';

/**
 * A stand-in for a value that changes from call to call, given to Kysely's builder where the
 * value would go. Kysely makes it a parameter like any value, so after compiling, the
 * parameter's position is found by its marker, in either dialect's placeholder syntax.
 */
export function slot(name: string): string {
  return `${MARK}${name}`;
}

export interface BoundStatement<K extends string, R> {
  /** The compiled statement with this call's values in its slots' places. */
  bind(values: Readonly<Record<K, unknown>>): CompiledQuery<R>;
}

/**
 * A statement built and compiled once (with `slot()` markers where its per-call values go),
 * then bound to each call's values. Why: Kysely builds an operation tree and compiles it to
 * SQL at every call, which cost an enrollment more than SQLite's own work did (docs/benchmarks.md):
 * the SQL text and the parameters' order are the same every time, only their values change.
 * Parameters that are not markers (constants written in the builder) keep their value.
 *
 * `slots` names every marker the statement must have: a marker missing from the compiled
 * statement, or one not named, is an error at compile time, not a wrong value at run time.
 */
export function boundStatement<K extends string, R>(compiled: CompiledQuery<R>, slots: readonly K[]): BoundStatement<K, R> {
  const places = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(MARK) ? (p.slice(MARK.length) as K) : undefined));
  const known = new Set<string>(slots);
  for (const place of places) if (place !== undefined && !known.has(place)) throw new Error(`statement has a slot "${place}" not named: ${compiled.sql}`);
  for (const name of slots) if (!places.includes(name)) throw new Error(`statement has no slot "${name}": ${compiled.sql}`);
  const constants = compiled.parameters;
  return {
    bind(values) {
      const parameters = new Array<unknown>(places.length);
      for (let i = 0; i < places.length; i++) {
        const place = places[i];
        parameters[i] = place === undefined ? constants[i] : values[place];
      }
      return { ...compiled, parameters };
    },
  };
}
