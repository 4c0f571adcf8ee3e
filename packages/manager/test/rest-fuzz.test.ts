/**
 * Hostile REST input, property-based: random and malformed bodies (wrong types, huge strings,
 * deep nesting, invalid JSON, wrong content types, bodies shaped like the route's schema with
 * random values) posted as admin to every write route in the OpenAPI document of a real
 * manager process. Never a 500, never a stack trace; afterwards the manager still answers,
 * everything it lists still matches the schemas (nothing invalid stored), and its RSS stayed
 * bounded. Prints how many cases ran.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import Type from 'typebox';
import {
  ApiToken, AuditEntry, checker, Device, EnrollmentToken, Page, Task, User, type CreatedApiToken,
} from '@pallas/protocol';
import { Api, createEnrollmentToken, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { enroll, fakeFacts } from './support.js';

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

interface RawBody { contentType: string | null; text: string; why: string }
interface WriteRoute { method: string; path: string; properties: string[]; valid?: Record<string, unknown> }

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
  fc.integer(), fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -0),
  fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 50 }),
  fc.constant('x'.repeat(20_000)),
);

function bodies(route: WriteRoute): fc.Arbitrary<RawBody> {
  const json = (why: string) => (v: unknown): RawBody => ({ contentType: 'application/json', text: JSON.stringify(v) ?? 'null', why });
  const shaped = route.properties.length
    ? fc.record(Object.fromEntries(route.properties.map((p) => [p, nasty])), { requiredKeys: [] })
    : fc.dictionary(fc.string({ maxLength: 10 }), nasty, { maxKeys: 5 });
  const mutated = route.valid
    ? fc.tuple(fc.constantFrom(...Object.keys(route.valid)), fc.option(nasty, { nil: undefined }))
      .map(([key, value]) => {
        const body: Record<string, unknown> = { ...route.valid };
        if (value === undefined) delete body[key];
        else body[key] = value;
        return body;
      })
    : shaped;
  return fc.oneof(
    { weight: 5, arbitrary: shaped.map(json('schema-shaped, random values')) },
    { weight: route.valid ? 5 : 1, arbitrary: mutated.map(json('a valid body with one field changed or removed')) },
    { weight: route.valid ? 1 : 0, arbitrary: fc.constant(route.valid ?? {}).map(json('a valid body')) },
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
      arbitrary: fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx', ''), shaped)
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

before(async () => {
  manager = await startManagerProcess({ args: ['--max-body-bytes', String(MAX_BODY_BYTES), '--login-max-failures', '1000', '--login-address-max-failures', '100000'] });
  admin = await manager.admin();
  const token = await createEnrollmentToken(admin, { maxUses: 1000 });
  const device = await enroll(new Api(manager.httpUrl), token, 'fuzz-device');
  const victim = await admin.post<{ id: string }>('/api/v1/users', { username: 'fuzz-victim', password: 'fuzz-victim-password', role: 'viewer' });
  const task = await admin.post<{ id: string }>(`/api/v1/devices/${device.deviceId}/vms/vm-1/power`, { action: 'on' });
  const apiToken = await admin.post<CreatedApiToken>('/api/v1/api-tokens', { name: 'fuzz' });
  const etok = await admin.post<{ id: string }>('/api/v1/enrollment-tokens', {});
  ids = { device: device.deviceId, user: victim.body.id, task: task.body.id, apiToken: apiToken.body.id, enrollmentToken: etok.body.id };
});

after(async () => manager?.close());

describe('hostile REST bodies', () => {
  it('never crash, leak or store anything invalid, on every write route', async () => {
    const doc = (await admin.get('/api/v1/openapi.json')).body as {
      paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } }>>;
    };
    const routes: WriteRoute[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
        // Logging out would end the admin session the rest of the run uses; it reads no body.
        if (path.endsWith('/auth/logout')) continue;
        const properties = Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
        const valid = validBodies()[`${method.toUpperCase()} ${path}`];
        routes.push({ method: method.toUpperCase(), path, properties, ...(valid ? { valid } : {}) });
      }
    }
    // Deletions last: they remove the objects the other routes aim at.
    routes.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
    assert.ok(routes.length >= 15, `write routes found: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);

    const fill = (path: string): string => path
      .replace('/users/{id}', `/users/${ids.user}`)
      .replace('/api-tokens/{id}', `/api-tokens/${ids.apiToken}`)
      .replace('/enrollment-tokens/{id}', `/enrollment-tokens/${ids.enrollmentToken}`)
      .replace('/tasks/{id}', `/tasks/${ids.task}`)
      .replace('/devices/{id}', `/devices/${ids.device}`)
      .replace('{vmId}', 'vm-1');

    const rssBefore = rssMb(manager.pid);
    let cases = 0;
    const statuses: Record<number, number> = {};
    for (const route of routes) {
      // Every valid-looking login costs a password hash (by design); fewer runs there.
      const numRuns = route.path.endsWith('/auth/login') ? Math.ceil(RUNS_PER_ROUTE / 4) : RUNS_PER_ROUTE;
      await fc.assert(fc.asyncProperty(bodies(route), async (body) => {
        const url = `${manager.httpUrl}${fill(route.path)}`;
        const res = await fetch(url, {
          method: route.method,
          headers: { authorization: `Bearer ${admin.token}`, ...(body.contentType !== null ? { 'content-type': body.contentType } : {}) },
          body: body.text,
        });
        const text = await res.text();
        cases++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        checkAnswer(res.status, text, `${route.method} ${route.path} with ${body.why}`);
        // Login and enrollment answer wrong credentials with 401; anywhere else a 401 means
        // the admin session this run uses was lost, which would hide everything after it.
        const ownCredentials = route.path.endsWith('/auth/login') || route.path.endsWith('/enroll');
        if (res.status === 401 && !ownCredentials) throw new Error(`the admin session was lost at ${route.method} ${route.path}: ${text}`);
      }), { numRuns, seed: Number(process.env.PALLAS_FUZZ_SEED ?? Date.now() % 2 ** 31) });
    }
    const rssAfter = rssMb(manager.pid);
    console.log(`REST fuzz: ${cases} cases on ${routes.length} write routes; statuses ${JSON.stringify(statuses)}; manager RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MB`);

    // Still up and answering.
    assert.equal((await manager.api.get('/healthz')).status, 200);
    assert.equal((await admin.get('/api/v1/auth/me')).status, 200);
    assert.ok(rssAfter - rssBefore < RSS_GROWTH_LIMIT_MB, `RSS grew by ${(rssAfter - rssBefore).toFixed(0)} MB`);

    // Nothing invalid stored: every listing validates against its schema, read back as JSON.
    const lists: Array<[string, Parameters<typeof checker>[0]]> = [
      ['/api/v1/users?limit=1000', Page(User)],
      ['/api/v1/devices?limit=1000', Page(Device)],
      ['/api/v1/enrollment-tokens?limit=1000', Page(EnrollmentToken)],
      ['/api/v1/tasks?limit=1000', Page(Task)],
      ['/api/v1/api-tokens?all=true&limit=1000', Page(ApiToken)],
      // What the fuzzing itself put in the audit log must read back as valid entries too.
      ['/api/v1/audit?limit=1000', Page(AuditEntry)],
    ];
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
