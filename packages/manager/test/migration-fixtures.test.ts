/**
 * Upgrades keep data (issue #21, point 5; docs/testing.md, "Migration fixtures"). Each fixture
 * is a database made by the migrations of an older schema version and filled with the seed
 * (users, a session, an API token, an enrollment token, devices with tags, facts and VMs,
 * tasks, audit rows, artifacts — whatever that version has), kept as SQL text per dialect.
 * Each is loaded into a fresh SQLite file and a fresh PostgreSQL database, migrated to the
 * latest schema by the store's own `migrate()`, and then:
 * - every row of every table is still there with every value it had (row counts equal);
 * - every relation still holds (no child row without its parent);
 * - a real manager starts on it: the seed's users log in, its API token works, its device
 *   connects over MQTT with its old credential, its enrollment token enrolls a new device,
 *   and the REST API serves its devices, tasks and audit rows, valid against the schemas.
 * A migration added without a fixture of the version before it fails the first test, which
 * says how to make one.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { AuditEntry, Device, Task, checker, type PageOf, type User } from '@pallas/protocol';
import { Api, TEST_PG_URL, createTestDatabase, startManagerProcess, tempDir, type ManagerProcess } from '@pallas/testkit';
import { openStore } from '../src/store/store.js';
import { SEED } from './migration-fixtures/seed.js';
import { fixtureFile, migrationNames, missingFixtures, versionsNeedingFixtures, type Dialect } from './migration-fixtures/fixtures.js';
import { loadPostgres, loadSqlite } from './migration-fixtures/sql-text.js';
import { pgSkip } from './store-targets.js';
import { closeClient, fakeFacts, tryConnect } from './support.js';

const HOW = 'make it with `npm run build && npx tsx packages/manager/test/migration-fixtures/make.ts` and commit the SQL files it writes (docs/testing.md, "Migration fixtures")';

/** Child column → parent column: the relations the store relies on (foreign keys or not). */
const RELATIONS: Array<[string, string, string, string]> = [
  ['sessions', 'user_id', 'users', 'id'],
  ['api_tokens', 'user_id', 'users', 'id'],
  ['device_tags', 'device_id', 'devices', 'id'],
  ['devices', 'enrollment_token_id', 'enrollment_tokens', 'id'],
  ['tasks', 'device_id', 'devices', 'id'],
  ['tasks', 'retry_of', 'tasks', 'id'],
  ['device_history', 'device_id', 'devices', 'id'],
  ['device_presence_history', 'device_id', 'devices', 'id'],
];

type Snapshot = Map<string, { columns: string[]; rows: string[] }>;

/** Every table's rows, each as the JSON of its values in column order (as text: dialects differ in number types). */
async function snapshot(db: Kysely<any>, only?: Snapshot): Promise<Snapshot> {
  const out: Snapshot = new Map();
  for (const t of await db.introspection.getTables()) {
    if (t.name.startsWith('kysely_')) continue;
    const columns = only?.get(t.name)?.columns ?? t.columns.map((c) => c.name).sort();
    const rows = (await db.selectFrom(t.name).select(columns).execute() as Array<Record<string, unknown>>)
      .map((r) => JSON.stringify(columns.map((c) => (r[c] === null ? null : String(r[c])))))
      .sort();
    out.set(t.name, { columns, rows });
  }
  return out;
}

async function applied(db: Kysely<any>): Promise<string[]> {
  return (await db.selectFrom('kysely_migration').select('name').orderBy('name').execute()).map((r) => r.name as string);
}

/** A fresh database of the dialect, loaded with the fixture's SQL. */
async function loaded(version: string, dialect: Dialect): Promise<{ url: string; dispose(): Promise<void> }> {
  const text = readFileSync(fixtureFile(version, dialect), 'utf8');
  if (dialect === 'sqlite') {
    const dir = tempDir('pallas-fixture-');
    const file = join(dir.path, 'pallas.db');
    loadSqlite(file, text);
    return { url: `sqlite:${file}`, dispose: async () => dir.cleanup() };
  }
  const db = await createTestDatabase(TEST_PG_URL!);
  await loadPostgres(db.url, text);
  return { url: db.url, dispose: () => db.drop() };
}

const versions = await versionsNeedingFixtures();
const all = await migrationNames();

describe('migration fixtures', () => {
  it('has a fixture of every schema version that a later migration upgrades', async () => {
    const missing = await missingFixtures();
    assert.deepEqual(missing, [], `no fixture of the schema after ${missing.join(', ')} (a new migration needs one of the version before it): ${HOW}`);
  });

  for (const dialect of ['sqlite', 'postgres'] as const) {
    for (const version of versions) {
      it(`${dialect}: data of schema ${version} survives every later migration, and a manager runs on it`, {
        skip: dialect === 'postgres' ? pgSkip() : false,
      }, async () => {
        assert.ok(existsSync(fixtureFile(version, dialect)), `no fixture ${fixtureFile(version, dialect)}: ${HOW}`);
        const db = await loaded(version, dialect);
        let manager: ManagerProcess | undefined;
        try {
          const store = await openStore(db.url);
          let before: Snapshot;
          try {
            assert.deepEqual(await applied(store.write), all.slice(0, all.indexOf(version) + 1), 'the fixture is at its version');
            before = await snapshot(store.write);
            assert.ok((before.get('devices')?.rows.length ?? 0) > 0, 'the fixture holds data');
            await store.migrate();
            assert.deepEqual(await applied(store.write), all, 'migrated to the latest version');
            const afterwards = await snapshot(store.write, before);
            for (const [table, { rows }] of before) {
              assert.deepEqual(afterwards.get(table)?.rows, rows, `every row of ${table} with every value it had`);
            }
            for (const [child, column, parent, key] of RELATIONS) {
              if (!before.has(child) || !before.has(parent)) continue;
              const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(child)} c left join ${sql.table(parent)} p on c.${sql.ref(column)} = p.${sql.ref(key)} where c.${sql.ref(column)} is not null and p.${sql.ref(key)} is null`.execute(store.write);
              assert.equal(Number(rows[0]!.n), 0, `${child}.${column} → ${parent}.${key}`);
            }
          } finally {
            await store.close();
          }

          manager = await startManagerProcess({ database: { url: db.url } });
          await checkThroughTheManager(manager, version, all);
        } finally {
          await manager?.close();
          await db.dispose();
        }
      });
    }
  }
});

const validDevice = checker(Device);
const validTask = checker(Task);
const validAudit = checker(AuditEntry);

async function checkThroughTheManager(manager: ManagerProcess, version: string, names: string[]): Promise<void> {
  const has = (migration: string) => names.indexOf(version) >= names.indexOf(migration);
  const admin = await manager.api.login('admin', SEED.adminPassword);
  const ops = await manager.api.login('ops-anna', SEED.operatorPassword);
  assert.equal((await ops.get<User>('/api/v1/auth/me')).body.role, 'operator');
  const users = (await admin.get<PageOf<User>>('/api/v1/users')).body.items.map((u) => u.username).sort();
  assert.deepEqual(users, ['admin', 'ops-anna']);

  const devices = (await admin.get<PageOf<Device>>('/api/v1/devices?limit=100')).body.items;
  assert.deepEqual(devices.map((d) => d.name).sort(), ['edge-a', 'edge-b']);
  for (const d of devices) assert.ok(validDevice.check(d), validDevice.explain(d));
  const a = devices.find((d) => d.id === SEED.devices.a)!;
  assert.deepEqual([...a.tags].sort(), ['site=berlin', 'tier:1']);
  assert.equal(a.facts?.hostname, 'edge-a');
  const vms = (await admin.get<Array<{ name: string }>>(`/api/v1/devices/${SEED.devices.a}/vms`)).body.map((v) => v.name);
  assert.deepEqual(vms, ['web', 'db — ünïcode']);

  // The device's old credential still opens its MQTT session (blocked edge-b's is refused once blocking exists).
  const connected = await tryConnect(manager.mqttUrl, { clientId: SEED.devices.a, username: SEED.devices.a, password: SEED.deviceSecret });
  assert.equal(connected.ok, true, `edge-a connects with its credential: ${connected.ok ? '' : connected.message}`);
  if (connected.ok) await closeClient(connected.client);
  // The enrollment token still enrolls (and counts the use).
  const enrolled = await manager.api.post('/api/v1/enroll', { token: SEED.enrollmentToken, deviceId: randomUUID(), facts: fakeFacts('after-upgrade') });
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));

  if (has('002-tasks')) {
    const tasks = (await admin.get<PageOf<Task>>('/api/v1/tasks?limit=100')).body.items;
    const states = Object.fromEntries(tasks.filter((t) => t.id.startsWith('tsk_0fixture')).map((t) => [t.id, t.state]));
    assert.deepEqual(states, { tsk_0fixture000001: 'succeeded', tsk_0fixture000002: 'failed', tsk_0fixture000003: 'queued', tsk_0fixture000004: 'timed_out' });
    for (const t of tasks) assert.ok(validTask.check(t), validTask.explain(t));
    const retried = tasks.find((t) => t.id === 'tsk_0fixture000003')!;
    assert.deepEqual([retried.retryOf, retried.attempt], ['tsk_0fixture000002', 2]);
  }
  if (has('003-audit-api-tokens')) {
    const me = await new Api(manager.httpUrl, SEED.apiToken).get<User>('/api/v1/auth/me');
    assert.equal(me.status, 200, 'the API token still works');
    assert.equal(me.body.username, 'ops-anna');
    const audit = (await admin.get<PageOf<AuditEntry>>('/api/v1/audit?limit=500')).body.items;
    const seeded = audit.filter((e) => e.id.startsWith('aud_0fixture')).map((e) => e.action).sort();
    // Fixtures made since the seed has them (009 on) hold a request that started a task and a refused one.
    const since009 = has('009-groups-rollouts');
    assert.deepEqual(seeded, ['device.block', 'login.failed', 'user.create', ...(since009 ? ['vm.power', 'vm.power'] : [])]);
    for (const e of audit) assert.ok(validAudit.check(e), validAudit.explain(e));
    if (since009) {
      assert.deepEqual(audit.find((e) => e.id === 'aud_0fixture000004')?.task, { id: 'tsk_0fixture000002', state: 'failed', error: { code: 'not_found', message: 'no VM with id "vm-101"' } });
      assert.deepEqual(audit.find((e) => e.id === 'aud_0fixture000005')?.reason, { code: 'not_found', message: 'no VM vm-9' });
    }
  }
}
