/**
 * The agent's generated checks (src/checks/generated.ts) against the schemas they come from:
 * the committed file is what the generator makes from today's schemas, and each check accepts
 * and refuses exactly what TypeBox's compiled checker of the same schema does, over values
 * generated from the schema (mostly valid) and mutations of them (mostly not).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checker } from '@pallas/protocol';
import { Compile } from 'typebox/compile';
import * as TypeBoxFormats from 'typebox/format';
import type { TSchema } from 'typebox';
import * as checks from '../src/checks/index.js';
import * as formats from '../src/checks/formats.js';
import * as generated from '../src/checks/generated.js';
import { generateChecks } from '../src/checks/generate.js';
import { SCHEMAS, type SchemaName } from '../src/checks/schemas.js';

type Schema = Record<string, unknown> & {
  type?: string; anyOf?: Schema[]; properties?: Record<string, Schema>; required?: string[]; additionalProperties?: boolean | Schema;
  items?: Schema; const?: unknown; format?: string; pattern?: string;
};

/** Values of a schema: valid ones, with lengths and counts kept small. */
function arb(s: Schema): fc.Arbitrary<unknown> {
  if (s.anyOf) return fc.oneof(...s.anyOf.map(arb));
  if ('const' in s) return fc.constant(s.const);
  switch (s.type) {
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = typeof s.minimum === 'number' ? s.minimum : -1e6;
      const max = typeof s.maximum === 'number' ? s.maximum : Math.max(min, 0) + 1e6;
      return fc.oneof(fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max: Math.min(max, Number.MAX_SAFE_INTEGER) }), fc.constantFrom(min, max));
    }
    case 'number': {
      const min = typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum : -1e6;
      const max = typeof s.maximum === 'number' ? s.maximum : Math.max(min, 0) + 1e6;
      return fc.oneof(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), fc.integer({ min: Math.ceil(min), max: Math.floor(max) }), fc.constantFrom(min, max));
    }
    case 'string': {
      const minLength = typeof s.minLength === 'number' ? s.minLength : 0;
      const maxLength = Math.min(typeof s.maxLength === 'number' ? s.maxLength : 40, minLength + 40);
      if (s.format === 'date-time') return fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString());
      if (s.format === 'uuid') return fc.uuid();
      if (s.format) throw new Error(`no generator for format ${s.format}`);
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern, 'u')).filter((x) => [...x].length >= minLength && [...x].length <= (s.maxLength as number ?? Infinity));
      return fc.string({ unit: fc.oneof(fc.constant('a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), minLength, maxLength });
    }
    case 'array': {
      const maxLength = Math.min(typeof s.maxItems === 'number' ? s.maxItems : 4, 4);
      const minLength = typeof s.minItems === 'number' ? Math.min(s.minItems, maxLength) : 0;
      return fc.array(arb(s.items!), { minLength, maxLength });
    }
    case 'object': {
      const required = new Set(s.required ?? []);
      const props = Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, arb(v)]));
      const optional = Object.keys(props).filter((k) => !required.has(k));
      return fc.record(props, { requiredKeys: [...required] as never[] }).map((o) => o as unknown).filter((o) =>
        // minProperties (a patch with at least one change) is the one constraint fc.record does not keep.
        typeof s.minProperties !== 'number' || Object.keys(o as object).length >= s.minProperties || optional.length === 0);
    }
    default:
      throw new Error(`no generator for schema ${JSON.stringify(s).slice(0, 200)}`);
  }
}

type Path = (string | number)[];

function paths(value: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

const ODD = [
  undefined, null, true, 0, -0, 1, -1, 0.5, 1e21, NaN, Infinity, -Infinity, 2 ** 53, '', ' ', 'x'.repeat(300), '\u{1F600}', '\uD800', 'a\u0000b',
  [], [1], {}, { a: 1 }, Object.create(null), new Date(0), 10n,
];

/** One change to a value: a node replaced, a key removed or added, a number or string nudged. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), with: fc.oneof(fc.constantFrom(...ODD), fc.jsonValue({ maxDepth: 2 })) }),
  fc.record({ kind: fc.constant('delete' as const) }),
  fc.record({ kind: fc.constant('add' as const), key: fc.oneof(fc.constantFrom('extra', '__proto__', 'constructor', 'type', 'id'), fc.string({ maxLength: 6 })), with: fc.jsonValue({ maxDepth: 1 }) }),
  fc.record({ kind: fc.constant('nudge' as const), by: fc.constantFrom(-1, 1, -0.5, 0.5, 1e-9) }),
  fc.record({ kind: fc.constant('text' as const), op: fc.constantFrom('append', 'chop', 'astral', 'surrogate', 'upper', 'space') }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(value: unknown, path: Path, m: Mutation): unknown {
  const root = structuredClone(value);
  const parentPath = path.slice(0, -1);
  const key = path.at(-1);
  let parent: any = { root };
  for (const k of ['root', ...parentPath]) parent = parent[k as never];
  const holder: any = path.length === 0 ? { root } : parent;
  const slot = path.length === 0 ? 'root' : key!;
  const current = holder[slot];
  switch (m.kind) {
    case 'replace':
      holder[slot] = m.with;
      break;
    case 'delete':
      if (Array.isArray(holder)) holder.splice(slot as number, 1);
      else delete holder[slot];
      break;
    case 'add':
      if (current !== null && typeof current === 'object' && !Array.isArray(current)) Object.defineProperty(current, m.key, { value: m.with, enumerable: true, writable: true, configurable: true });
      else if (Array.isArray(current)) current.push(m.with);
      else holder[slot] = { [m.key]: m.with };
      break;
    case 'nudge':
      holder[slot] = typeof current === 'number' ? current + m.by : m.by;
      break;
    case 'text': {
      const s = typeof current === 'string' ? current : String(current);
      holder[slot] = m.op === 'append' ? `${s}x` : m.op === 'chop' ? s.slice(0, -1) : m.op === 'astral' ? `${s}\u{1F600}` : m.op === 'surrogate' ? `${s}\uDC00` : m.op === 'upper' ? s.toUpperCase() : ` ${s}`;
      break;
    }
  }
  return path.length === 0 ? holder.root : root;
}

const names = Object.keys(SCHEMAS) as SchemaName[];

describe('agent checks (generated from the schemas)', () => {
  it('the committed generated.ts is what the generator makes from the schemas', () => {
    const committed = readFileSync(new URL('../src/checks/generated.ts', import.meta.url), 'utf8');
    assert.ok(committed === generateChecks(), 'src/checks/generated.ts is stale: run `node --import tsx packages/agent/scripts/gen-checks.ts`');
  });

  it('has a generated check for every schema, and no other', () => {
    assert.deepEqual(Object.keys(generated).sort(), [...names].sort());
  });

  for (const name of names) {
    it(`${name}: accepts and refuses exactly what TypeBox does`, () => {
      const schema = SCHEMAS[name] as TSchema;
      const typebox = Compile(schema);
      const ours = generated[name] as (value: unknown) => boolean;
      const valid = arb(schema as unknown as Schema);
      let accepted = 0;
      let refused = 0;
      const agree = (value: unknown): boolean => {
        const want = typebox.Check(value);
        if (want) accepted++;
        else refused++;
        return ours(value) === want;
      };
      fc.assert(fc.property(valid, (v) => agree(v)), { numRuns: 1500 });
      const mutated = valid.chain((v) => fc.tuple(fc.constantFrom(...paths(v)), mutation).map(([p, m]) => mutate(v, p, m)));
      fc.assert(fc.property(mutated, (v) => agree(v)), { numRuns: 3000 });
      fc.assert(fc.property(fc.oneof(fc.anything(), fc.constantFrom(...ODD)), (v) => agree(v)), { numRuns: 300 });
      // Both outcomes must have been exercised, or the comparison says little.
      assert.ok(accepted >= 300, `${name}: only ${accepted} values accepted`);
      assert.ok(refused >= 300, `${name}: only ${refused} values refused`);
    });
  }

  it('formats: the copied date-time and uuid checks agree with TypeBox', () => {
    const dateLike = fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.stringMatching(/^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,3})?([Zz]|[+-]\d\d:\d\d)?(\[[!A-Za-z/_+:0-9=-]{1,12}\])?$/),
      fc.string({ maxLength: 30 }),
    );
    fc.assert(fc.property(dateLike, (s) => formats.IsDateTime(s) === TypeBoxFormats.IsDateTime(s)), { numRuns: 5000 });
    fc.assert(fc.property(fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), fc.string({ maxLength: 40 })), (s) => formats.IsUuid(s) === TypeBoxFormats.IsUuid(s)), { numRuns: 2000 });
    for (const s of ['2024-02-29T23:59:60Z', '2023-02-29T00:00:00Z', '2024-12-31T23:59:60Z', '2024-12-31T23:59:60+01:00', '2024-12-31T22:59:60-01:00', '2024-01-01T00:00:00']) {
      assert.equal(formats.IsDateTime(s), TypeBoxFormats.IsDateTime(s), s);
    }
  });

  it('explains a refusal in the protocol checker\'s words', async () => {
    const bad = { type: 'run', taskId: 'tsk_x', operation: { kind: 'vm.delete' }, timeoutMs: -1 };
    assert.equal(checks.checkTaskCommand.check(bad), false);
    assert.equal(await checks.checkTaskCommand.explain(bad), checker(SCHEMAS.TaskCommand).explain(bad));
    const res = await checks.checkDeviceIdentity.parseJson('{"deviceId":"nope","createdAt":"2024-01-01T00:00:00Z"}');
    assert.deepEqual(res, { ok: false, error: checker(SCHEMAS.DeviceIdentity).explain({ deviceId: 'nope', createdAt: '2024-01-01T00:00:00Z' }) });
    assert.deepEqual(await checks.checkTaskAck.parseJson('{'), { ok: false, error: 'payload is not valid UTF-8 JSON' });
    assert.deepEqual(await checks.checkTaskAck.parseJson(Buffer.from([0xff])), { ok: false, error: 'payload is not valid UTF-8 JSON' });
  });
});
