/**
 * The route table (packages/protocol/src/routes) is the one description of the REST API: the
 * manager must serve exactly its routes (plus the few infrastructure routes outside it), each
 * documented in the OpenAPI document under its name, and every entry must be consistent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_PREFIX, ROUTES, ROUTE_NAMES, schemaOf, type RouteSpec } from '@pallas/protocol';
import { ADMIN_PASSWORD, tempDir } from '@pallas/testkit';
import { startManager, type RunningManager } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { INFRA_ROUTES } from '../src/transport/http/serve.js';
import { routesOf } from '../src/transport/http/server.js';

let dir: ReturnType<typeof tempDir>;
let manager: RunningManager;

before(async () => {
  dir = tempDir('pallas-routes-');
  manager = await startManager(loadConfig([
    '--data-dir', dir.path, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0',
    '--http-host', '127.0.0.1', '--mqtt-host', '127.0.0.1', '--log-level', 'silent', '--admin-password', ADMIN_PASSWORD,
  ], {}));
});

after(async () => {
  await manager?.stop();
  dir?.cleanup();
});

const key = (spec: RouteSpec) => `${spec.method} ${API_PREFIX}${spec.path}`;

describe('route table', () => {
  it('is what the manager serves: no route on one side only', () => {
    const served = new Set(routesOf(manager.http).filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`));
    const table = new Set([...ROUTE_NAMES.map((n) => key(ROUTES[n])), ...INFRA_ROUTES]);
    const notServed = [...table].filter((k) => !served.has(k));
    const notInTable = [...served].filter((k) => !table.has(k));
    assert.deepEqual(notServed, [], `in the route table but not served (add a handler with serve()): ${notServed.join(', ')}`);
    assert.deepEqual(notInTable, [], `served but not in the route table (add it to packages/protocol/src/routes/route-table.ts): ${notInTable.join(', ')}`);
  });

  it('documents every route in the OpenAPI document under its name', async () => {
    const res = await fetch(`http://127.0.0.1:${manager.ports.http}${API_PREFIX}/openapi.json`);
    const doc = (await res.json()) as { paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };
    for (const name of ROUTE_NAMES) {
      const spec = ROUTES[name];
      const path = `${API_PREFIX}${spec.path}`.replace(/:([A-Za-z]+)/g, '{$1}');
      assert.equal(doc.paths[path]?.[spec.method.toLowerCase()]?.operationId, name, `${spec.method} ${path}`);
    }
  });

  it('names existing schemas, and params that match the path', () => {
    for (const name of ROUTE_NAMES) {
      const spec: RouteSpec = ROUTES[name];
      for (const part of [spec.params, spec.query, spec.body, spec.response]) {
        if (part === undefined || part === 'binary' || part === 'event-stream') continue;
        assert.ok(schemaOf(part), `${name}: no schema named ${part}`);
      }
      const inPath = [...spec.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]).sort();
      const declared = spec.params ? Object.keys((schemaOf(spec.params) as { properties: object }).properties).sort() : [];
      assert.deepEqual(declared, inPath, `${name}: params ${spec.params ?? '(none)'} against path ${spec.path}`);
      assert.equal(spec.status === 204, spec.response === undefined, `${name}: a 204 has no answer and only a 204`);
      if (spec.method === 'GET') assert.equal(spec.body, undefined, `${name}: a GET has no body`);
    }
  });
});
