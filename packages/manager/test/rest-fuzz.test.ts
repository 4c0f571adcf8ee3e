/**
 * Hostile REST input, property-based (issue 6; issue 21, points 1 and 7), against a real
 * manager process, on every route of its OpenAPI document:
 * - write routes: random and malformed JSON bodies (wrong types, huge strings, deep nesting,
 *   invalid JSON, wrong content types, schema-shaped bodies with random values, valid bodies
 *   with one value changed or removed at any depth), `application/octet-stream` uploads;
 * - every route: its query string and path parameters, from the route's own parameter schemas
 *   (so that many cases pass validation and reach the services) or hostile (all of Unicode,
 *   control characters), path parameters being real ids most of the time.
 * Each case is checked on its own: never a 5xx, never a stack trace or path, an error is
 * `{error: {code, message}}`, the manager process is alive, the admin session still works,
 * and after a write the listings of what the route writes (groups and rollouts included)
 * still match their schemas (nothing invalid stored). The first bad case stops the run with
 * the seed and path that replay it (docs/testing.md, "Fuzzing"). Prints how many cases ran,
 * by status, and the share that got past the request validator; the manager's RSS stays
 * bounded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import Type from 'typebox';
import {
  ApiToken, Artifact, AuditEntry, checker, Device, EnrollmentToken, Group, Page, Rollout, RolloutDevice, Task, User, type CreatedApiToken,
} from '@pallas/protocol';
import { Api, announceFuzzSeed, anyText, createEnrollmentToken, fuzz, mutatedDeep, patchFile, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { enroll, fakeFacts } from './support.js';

const FILE = 'packages/manager/test/rest-fuzz.test.ts';
const MAX_BODY_BYTES = 64 * 1024;
/** How far the manager's resident memory may grow over the whole run. */
const RSS_GROWTH_LIMIT_MB = 200;
const RUNS_PER_ROUTE = Number(process.env.PALLAS_FUZZ_RUNS ?? 120);

let manager: ManagerProcess;
let admin: Api;
let ids: Record<string, string>;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

interface RawBody { contentType: string | null; text: string | Uint8Array; why: string }
interface Param { in: 'query' | 'path'; name: string; schema: Record<string, unknown> }
interface Route { method: string; path: string; params: Param[]; properties: string[]; json: boolean; octets: boolean; valid?: Record<string, unknown> }

/**
 * A valid body per route (by OpenAPI path): mutating one field of it at a time reaches the
 * code behind validation (services, store), which random bodies rarely get past.
 */
function validBodies(): Record<string, Record<string, unknown>> {
  return {
    'POST /api/v1/users': { username: 'fuzz-made', password: 'fuzz-made-password', role: 'viewer' },
    'PATCH /api/v1/users/{id}': { role: 'operator' },
    'POST /api/v1/api-tokens': { name: 'fuzz-token', role: 'viewer', expiresInDays: 5 },
    'POST /api/v1/enrollment-tokens': { name: 'fuzz', ttlSec: 3600, maxUses: 2 },
    'PATCH /api/v1/devices/{id}': { name: 'fuzz-name', tags: ['a', 'b'] },
    'POST /api/v1/devices/{id}/vms': { name: 'fuzz-vm', vcpus: 1, memoryMB: 256, diskGB: 1 },
    'POST /api/v1/devices/{id}/vms/{vmId}/power': { action: 'on' },
    'PATCH /api/v1/devices/{id}/vms/{vmId}': { name: 'renamed', vcpus: 2 },
    'POST /api/v1/devices/{id}/agent-update': { artifactId: 'art_fuzz0agent', healthySec: 60 },
    'POST /api/v1/devices/{id}/patch': { artifactId: 'art_fuzz0patch' },
    'POST /api/v1/tasks': { operation: { kind: 'vm.power', vmId: 'vm-1', action: 'off' }, deviceIds: [ids.device] },
    'POST /api/v1/auth/login': { username: 'fuzz-victim', password: 'wrong-password' },
    'POST /api/v1/enroll': { token: 'pet_0123456789abcdef', deviceId: '00000000-0000-4000-8000-000000000000', facts: fakeFacts('fuzz-host') },
    'POST /api/v1/groups': { name: 'fuzz-made-group', description: 'made by the fuzzer', deviceIds: [ids.device] },
    'PATCH /api/v1/groups/{id}': { name: 'fuzz-group-renamed', description: 'changed by the fuzzer', deviceIds: [ids.device] },
    'POST /api/v1/rollouts': {
      name: 'fuzz-made-rollout', operation: { kind: 'vm.power', vmId: 'vm-1', action: 'on' }, deviceIds: [ids.device],
      waves: { sizes: ['100%'] }, errorThreshold: { count: 2, action: 'pause' }, deviceTimeoutSec: 600,
    },
    'POST /api/v1/rollouts/plan': { deviceIds: [ids.device], waves: { ramp: { first: 1, factor: 2, cap: 10 } } },
    'POST /api/v1/rollouts/{id}/pause': { reason: 'fuzz' },
    'POST /api/v1/rollouts/{id}/resume': { reason: 'fuzz' },
    'POST /api/v1/rollouts/{id}/abort': { reason: 'fuzz' },
  };
}

/** Any JSON value, nested a little. */
const jsonValue = fc.jsonValue({ maxDepth: 4 });
/** Values that break naive handlers: wrong types, boundaries, long and odd strings. */
const nasty = fc.oneof(
  jsonValue,
  fc.string({ maxLength: 3000 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.constantFrom('', ' ', '\u0000', '../../etc/passwd', '$where', '#', '+', '<script>', '__proto__', 'constructor', '\ud800'),
  anyText(200),
  fc.integer(), fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -0),
  fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 50 }),
  fc.constant('x'.repeat(20_000)),
);

function bodies(route: Route): fc.Arbitrary<RawBody> {
  const json = (why: string) => (v: unknown): RawBody => ({ contentType: 'application/json', text: JSON.stringify(v) ?? 'null', why });
  const shaped = route.properties.length
    ? fc.record(Object.fromEntries(route.properties.map((p) => [p, nasty])), { requiredKeys: [] })
    : fc.dictionary(fc.string({ maxLength: 10 }), nasty, { maxKeys: 5 });
  // One value changed or removed at any depth (the operation of a bulk task, a device's facts).
  const mutated = route.valid ? mutatedDeep(route.valid, nasty) : shaped;
  return fc.oneof(
    { weight: 5, arbitrary: shaped.map(json('schema-shaped, random values')) },
    { weight: route.valid ? 5 : 1, arbitrary: mutated.map(json('a valid body with one field changed or removed')) },
    { weight: route.valid ? 4 : 0, arbitrary: fc.constant(route.valid ?? {}).map(json('a valid body')) },
    { weight: 2, arbitrary: fc.tuple(shaped, fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), nasty, { minKeys: 1, maxKeys: 3 })).map(([a, b]) => ({ ...b, ...a })).map(json('extra properties')) },
    { weight: 2, arbitrary: jsonValue.map(json('any JSON value')) },
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 20_000 }).map((n) => ({ contentType: 'application/json', text: `${'['.repeat(n)}${']'.repeat(n)}`, why: `nested ${n} deep` })) },
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 5000 }).map((n) => ({ contentType: 'application/json', text: `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`, why: `object nested ${n} deep` })) },
    { weight: 2, arbitrary: fc.string({ maxLength: 200 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }).map((text) => ({ contentType: 'application/json', text, why: 'invalid JSON' })) },
    { weight: 1, arbitrary: shaped.map((v) => JSON.stringify(v)).chain((t) => fc.nat({ max: Math.max(0, t.length - 1) }).map((n) => ({ contentType: 'application/json', text: t.slice(0, n), why: 'truncated JSON' }))) },
    { weight: 1, arbitrary: fc.constant({ contentType: 'application/json', text: JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES * 2) }), why: 'over the body limit' }) },
    { weight: 1, arbitrary: fc.constant({ contentType: 'application/json', text: '{"__proto__":{"role":"admin"},"constructor":{"prototype":{"admin":true}}}', why: 'prototype pollution' }) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx', 'application/octet-stream', ''), shaped)
        .map(([contentType, v]) => ({ contentType, text: JSON.stringify(v), why: `content-type ${contentType || '(empty)'}` })),
    },
    { weight: 1, arbitrary: shaped.map((v) => ({ contentType: null, text: JSON.stringify(v), why: 'no content-type' })) },
  );
}

/** An error body must be `{error: {code, message}}` and give nothing away. */
function checkAnswer(status: number, text: string, label: string): void {
  assert.ok(status < 500, `${label}: ${status} ${text.slice(0, 300)}`);
  assert.ok(!text.includes('    at ') && !/node_modules|\/src\/|\.ts:\d/.test(text), `${label}: leaks internals: ${text.slice(0, 300)}`);
  if (status >= 400) {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    assert.deepEqual(Object.keys(body), ['error'], label);
    assert.equal(typeof body.error?.code, 'string', label);
    assert.equal(typeof body.error?.message, 'string', label);
  }
}

/** Upload bodies: random bytes, empty, large. */
const octets: fc.Arbitrary<RawBody> = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((b) => ({ contentType: 'application/octet-stream', text: b, why: `${b.length} random bytes` })),
  fc.constant({ contentType: 'application/octet-stream', text: new Uint8Array(0), why: 'no bytes' }),
  fc.constant({ contentType: 'application/octet-stream', text: new Uint8Array(MAX_BODY_BYTES * 3).fill(7), why: 'three times the JSON body limit' }),
  fc.json().map((t) => ({ contentType: 'application/json', text: t, why: 'JSON to the upload route' })),
);

/** Values for a parameter: valid by its schema (to get past the validator), and hostile. */
function paramValues(schema: Record<string, unknown>): { valid: fc.Arbitrary<string>; hostile: fc.Arbitrary<string> } {
  const options = (schema.anyOf as Array<{ enum?: unknown[] }> | undefined)?.flatMap((s) => s.enum ?? []) ?? (schema.enum as unknown[] | undefined);
  let valid: fc.Arbitrary<string>;
  if (options?.length) valid = fc.constantFrom(...options.map(String));
  else if (schema.type === 'integer') valid = fc.integer({ min: (schema.minimum as number) ?? -1000, max: (schema.maximum as number) ?? 1_000_000 }).map(String);
  else if (schema.type === 'boolean') valid = fc.constantFrom('true', 'false');
  else if (schema.format === 'date-time') valid = fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString());
  else if (typeof schema.pattern === 'string') valid = fc.stringMatching(new RegExp(schema.pattern)).filter((v) => v.length >= ((schema.minLength as number) ?? 0) && v.length <= ((schema.maxLength as number) ?? 1e9));
  else valid = fc.string({ minLength: (schema.minLength as number) ?? 0, maxLength: Math.min((schema.maxLength as number) ?? 64, 64) });
  const hostile = fc.oneof(anyText(80), fc.constantFrom('', '-1', '1e309', 'NaN', 'null', '[]', '%00', '../', 'x'.repeat(5000)), fc.integer().map(String));
  return { valid, hostile };
}

/** What `encodeURIComponent` cannot encode (UTF-8 has no form for it). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The real id a path parameter names, by the collection it follows. */
function realId(path: string, param: string): string {
  if (param === 'vmId') return 'vm-1';
  const collection = new RegExp(`/([a-z-]+)/\\{${param}\\}`).exec(path)?.[1];
  const byCollection: Record<string, string | undefined> = {
    users: ids.user, 'api-tokens': ids.apiToken, 'enrollment-tokens': ids.enrollmentToken, tasks: ids.task, devices: ids.device, artifacts: ids.artifact,
    groups: ids.group, rollouts: ids.rollout,
  };
  const id = collection ? byCollection[collection] : undefined;
  if (!id) throw new Error(`no real id for {${param}} in ${path}: add one to realId`);
  return id;
}

/**
 * The URL of one case. Three in four are valid by the route's parameter schemas (real ids in
 * the path, some query parameters set), so that the case reaches the route's own code; the
 * rest mix hostile values into the path and query and add stray parameters.
 */
function urls(route: Route): fc.Arbitrary<{ url: string; why: string }> {
  const pathParams = route.params.filter((p) => p.in === 'path');
  const queryParams = route.params.filter((p) => p.in === 'query');
  // A path value is escaped as a client would (lone surrogates made well-formed, which
  // encodeURIComponent requires), or, hostile, sent raw: malformed %-escapes, slashes.
  const escaped = (arb: fc.Arbitrary<string>) => arb.map((v) => encodeURIComponent(v.replace(LONE_SURROGATE, '\ufffd')));
  const raw = fc.constantFrom('%', '%zz', '%E0%A4%A', '%C0%AF', '%00', '..%2F..%2F', 'a/b', '%%', '%u0041');
  const build = (hostile: boolean) => {
    const pathArb = fc.tuple(...pathParams.map((p) => (hostile
      ? fc.oneof({ weight: 4, arbitrary: fc.constant(realId(route.path, p.name)) }, { weight: 2, arbitrary: escaped(paramValues(p.schema).hostile) }, { weight: 1, arbitrary: raw })
      : fc.constant(realId(route.path, p.name)))));
    const queryArb = fc.tuple(
      fc.tuple(...queryParams.map((p) => {
        const v = paramValues(p.schema);
        return fc.option(hostile ? fc.oneof(v.valid, v.hostile) : v.valid, { nil: undefined, freq: 2 });
      })),
      hostile ? fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), anyText(20), { maxKeys: 2 }), { nil: undefined, freq: 2 }) : fc.constant(undefined),
    );
    return fc.tuple(pathArb, queryArb);
  };
  return fc.oneof({ weight: 3, arbitrary: build(false) }, { weight: 1, arbitrary: build(true) }).map(([values, [query, stray]]) => {
    let path = route.path;
    pathParams.forEach((p, i) => { path = path.replace(`{${p.name}}`, values[i]!); });
    const search = new URLSearchParams();
    queryParams.forEach((p, i) => { if (query[i] !== undefined) search.append(p.name, query[i]!); });
    for (const [k, v] of Object.entries(stray ?? {})) search.append(k, v);
    const qs = search.toString();
    return { url: `${path}${qs ? `?${qs}` : ''}`, why: `${path}${qs ? `?${qs.slice(0, 200)}` : ''}` };
  });
}

/**
 * What a write route may change, to be read back valid after each of its cases: the route's
 * own listing, and the listings it changes beside it (a device's tasks; a group's member count
 * after a device is renamed, retagged or removed; a rollout's tasks, its progress and its
 * devices' entries after a pause, resume or abort).
 */
const LISTS: Array<[RegExp, () => string, Parameters<typeof checker>[0]]> = [
  [/^\/api\/v1\/users/, () => '/api/v1/users?limit=1000', Page(User)],
  [/^\/api\/v1\/api-tokens/, () => '/api/v1/api-tokens?all=true&limit=1000', Page(ApiToken)],
  [/^\/api\/v1\/enrollment-tokens/, () => '/api/v1/enrollment-tokens?limit=1000', Page(EnrollmentToken)],
  [/^\/api\/v1\/(devices\/\{id\}\/|tasks|rollouts)/, () => '/api/v1/tasks?limit=1000', Page(Task)],
  [/^\/api\/v1\/(devices|enroll)/, () => '/api/v1/devices?limit=1000', Page(Device)],
  [/^\/api\/v1\/artifacts/, () => '/api/v1/artifacts?limit=1000', Page(Artifact)],
  [/^\/api\/v1\/(groups|devices)/, () => '/api/v1/groups?limit=1000', Page(Group)],
  [/^\/api\/v1\/(rollouts|groups|devices|tasks)/, () => '/api/v1/rollouts?limit=1000', Page(Rollout)],
  [/^\/api\/v1\/(rollouts|devices|tasks)/, () => `/api/v1/rollouts/${ids.rollout}/devices?limit=1000`, Page(RolloutDevice)],
];
const listCheckers = LISTS.map(([, , schema]) => checker(Type.Unsafe(schema)));

async function storedIsValid(route: Route): Promise<void> {
  for (const [i, [re, pathOf]] of LISTS.entries()) {
    if (!re.test(route.path)) continue;
    const path = pathOf();
    const res = await admin.get(path);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    const check = listCheckers[i]!;
    assert.ok(check.check(res.body), `after ${route.method} ${route.path}, ${path} holds something invalid: ${check.explain(res.body)}`);
  }
}

before(async () => {
  announceFuzzSeed(FILE);
  manager = await startManagerProcess({ args: ['--max-body-bytes', String(MAX_BODY_BYTES), '--login-max-failures', '1000', '--login-address-max-failures', '100000'] });
  admin = await manager.admin();
  const token = await createEnrollmentToken(admin, { maxUses: 1000 });
  const device = await enroll(new Api(manager.httpUrl), token, 'fuzz-device');
  const victim = await admin.post<{ id: string }>('/api/v1/users', { username: 'fuzz-victim', password: 'fuzz-victim-password', role: 'viewer' });
  const task = await admin.post<{ id: string }>(`/api/v1/devices/${device.deviceId}/vms/vm-1/power`, { action: 'on' });
  const apiToken = await admin.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'fuzz' });
  const etok = await admin.post<{ id: string }>('/api/v1/enrollment-tokens', {});
  const artifact = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=patch&name=fuzz&version=1`, {
    method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' }, body: patchFile('1', 'fuzz patch bytes'),
  });
  assert.equal(artifact.status, 201);
  const group = await admin.post<{ id: string }>('/api/v1/groups', { name: 'fuzz-group', deviceIds: [device.deviceId] });
  assert.equal(group.status, 201, JSON.stringify(group.body));
  const rollout = await admin.post<{ id: string }>('/api/v1/rollouts', { name: 'fuzz-rollout', operation: { kind: 'vm.power', vmId: 'vm-1', action: 'off' }, deviceIds: [device.deviceId] });
  assert.equal(rollout.status, 201, JSON.stringify(rollout.body));
  ids = {
    device: device.deviceId, user: victim.body.id, task: task.body.id, apiToken: apiToken.body.id, enrollmentToken: etok.body.id,
    artifact: ((await artifact.json()) as { id: string }).id, group: group.body.id, rollout: rollout.body.id,
  };
});

after(async () => manager?.close());

describe('hostile REST input', () => {
  it('never crashes, leaks or stores anything invalid, case by case, on every route', async () => {
    const doc = (await admin.get('/api/v1/openapi.json')).body as {
      paths: Record<string, Record<string, { parameters?: Param[]; requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } }>>;
    };
    const routes: Route[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        // Logging out would end the admin session the rest of the run uses; it reads no body.
        if (path.endsWith('/auth/logout')) continue;
        const content = op.requestBody?.content ?? {};
        const properties = Object.keys(content['application/json']?.schema?.properties ?? {});
        const valid = validBodies()[`${method.toUpperCase()} ${path}`];
        const octets = path === '/api/v1/artifacts' && method === 'post';
        const json = !octets && method !== 'get' && method !== 'delete';
        routes.push({ method: method.toUpperCase(), path, params: op.parameters ?? [], properties, json, octets, ...(valid ? { valid } : {}) });
      }
    }
    // Reads first, deletions last: they remove the objects the other routes aim at.
    const order = (r: Route) => (r.method === 'GET' ? 0 : r.method === 'DELETE' ? 2 : 1);
    routes.sort((a, b) => order(a) - order(b));
    assert.ok(routes.filter((r) => r.method !== 'GET').length >= 15, `write routes found: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);
    assert.ok(routes.filter((r) => r.method === 'GET').length >= 15, 'read routes found');

    const rssBefore = rssMb(manager.pid);
    let cases = 0;
    let pastValidation = 0;
    const statuses: Record<number, number> = {};
    for (const route of routes) {
      // Every valid-looking login costs a password hash (by design); fewer runs there.
      const numRuns = route.path.endsWith('/auth/login') ? Math.ceil(RUNS_PER_ROUTE / 4) : route.method === 'GET' ? Math.ceil(RUNS_PER_ROUTE / 2) : RUNS_PER_ROUTE;
      const body: fc.Arbitrary<RawBody | undefined> = route.octets ? octets : route.json ? bodies(route) : fc.constant(undefined);
      await fuzz(`${route.method} ${route.path}`, fc.tuple(urls(route), body), async ([target, b]) => {
        const abort = new AbortController();
        const res = await fetch(`${manager.httpUrl}${target.url}`, {
          method: route.method,
          signal: abort.signal,
          headers: { authorization: `Bearer ${admin.token}`, ...(b && b.contentType !== null ? { 'content-type': b.contentType } : {}) },
          ...(b ? { body: b.text } : {}),
        });
        // The event stream answers and stays open: its headers are the answer.
        const text = (res.headers.get('content-type') ?? '').startsWith('text/event-stream') ? (abort.abort(), '') : await res.text();
        cases++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const label = `${route.method} ${target.why}${b ? ` with ${b.why}` : ''}`;
        checkAnswer(res.status, text, label);
        if (!(res.status === 400 && /"code":"invalid_(request|json)"/.test(text)) && res.status !== 415 && res.status !== 413) pastValidation++;
        assert.equal(manager.child.exitCode, null, `the manager exited after ${label}`);
        // Login and enrollment answer wrong credentials with 401; anywhere else a 401 means
        // the admin session this run uses was lost, which would hide everything after it.
        const ownCredentials = route.path.endsWith('/auth/login') || route.path.endsWith('/enroll');
        if (res.status === 401 && !ownCredentials) throw new Error(`the admin session was lost at ${label}: ${text}`);
        if (route.method !== 'GET') await storedIsValid(route);
      }, { numRuns, file: FILE });
    }
    const rssAfter = rssMb(manager.pid);
    const share = Math.round((100 * pastValidation) / cases);
    console.log(`REST fuzz: ${cases} cases on ${routes.length} routes; statuses ${JSON.stringify(statuses)}; ${share} % got past the request validator; manager RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MB`);
    // A fuzzer whose cases all die at the validator tests only the validator.
    // (Not when replaying one case with PALLAS_FUZZ_PATH: then only that case runs.)
    if (process.env.PALLAS_FUZZ_PATH === undefined) assert.ok(share >= 40, `only ${share} % of the cases got past the request validator`);

    // Still up and answering.
    assert.equal((await manager.api.get('/healthz')).status, 200);
    assert.equal((await admin.get('/api/v1/auth/me')).status, 200);
    assert.ok(rssAfter - rssBefore < RSS_GROWTH_LIMIT_MB, `RSS grew by ${(rssAfter - rssBefore).toFixed(0)} MB`);

    // Nothing invalid stored anywhere, the audit log of the whole run included.
    const lists: Array<[string, Parameters<typeof checker>[0]]> = [...LISTS.map(([, pathOf, schema]) => [pathOf(), schema] as [string, Parameters<typeof checker>[0]]), ['/api/v1/audit?limit=1000', Page(AuditEntry)]];
    for (const [path, schema] of lists) {
      const res = await admin.get(path);
      assert.equal(res.status, 200, path);
      const check = checker(Type.Unsafe(schema));
      assert.ok(check.check(res.body), `${path}: ${check.explain(res.body)}`);
    }
    const users = (await admin.get<{ items: Array<{ username: string }> }>('/api/v1/users?limit=1000')).body.items;
    for (const u of users) assert.match(u.username, /^[A-Za-z0-9._@-]{1,64}$/);
  });
});
