/**
 * The audit log and API tokens tables on both store dialects: recording, redaction of
 * secrets, filters, newest-first paging, pruning.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { AuditService } from '../src/services/audit/audit-service.js';
import { openStore, type Store } from '../src/store/store.js';
import { UNAUTHENTICATED_PER_MINUTE, UnauthenticatedBudget } from '../src/transport/http/audit-hook.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

function auditSuite(makeTarget: () => Promise<StoreTarget>) {
  let target: StoreTarget;
  let store: Store;
  let audit: AuditService;

  before(async () => {
    target = await makeTarget();
    store = await openStore(target.url);
    await store.migrate();
    audit = new AuditService({ store, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await store?.close();
    await target?.dispose();
  });

  it('records who, what, to what, from where and how it went; newest first', async () => {
    await audit.record({ actor: { kind: 'user', id: 'u1', name: 'alice' }, action: 'user.create', target: { kind: 'user', id: 'u2', name: 'bob' }, outcome: 'ok', ip: '10.0.0.1', detail: { role: 'viewer' } });
    await audit.record({ actor: { kind: 'anonymous' }, action: 'login.failed', target: { kind: 'user', id: 'bob', name: 'bob' }, outcome: 'denied', ip: '10.0.0.2' });
    await audit.record({ actor: { kind: 'device', id: 'd1' }, action: 'device.enroll', target: { kind: 'device', id: 'd1' }, outcome: 'ok' });
    const page = await audit.list({});
    assert.equal(page.total, 3);
    assert.deepEqual(page.items.map((e) => e.action), ['device.enroll', 'login.failed', 'user.create']);
    const created = page.items[2]!;
    assert.deepEqual(created.actor, { kind: 'user', id: 'u1', name: 'alice' });
    assert.deepEqual(created.target, { kind: 'user', id: 'u2', name: 'bob' });
    assert.equal(created.ip, '10.0.0.1');
    assert.equal(created.outcome, 'ok');
    assert.deepEqual(created.detail, { role: 'viewer' });
    assert.ok(Date.parse(created.at) <= Date.now());
    assert.deepEqual(page.items[0]!.actor, { kind: 'device', id: 'd1' });
  });

  it('never stores a password, token or secret, at any depth', async () => {
    await audit.record({
      actor: { kind: 'user', name: 'alice' }, action: 'user.update', outcome: 'ok',
      detail: { password: 'hunter2-hunter2', nested: { token: 'pat_abc', apiKey: 'k', list: [{ secret: 's' }] }, role: 'admin' },
    });
    const [entry] = (await audit.list({ action: 'user.update' })).items;
    const text = JSON.stringify(entry);
    for (const leak of ['hunter2', 'pat_abc', '"k"', '"s"']) assert.ok(!text.includes(leak), `${leak} leaked: ${text}`);
    assert.equal((entry!.detail as { role: string }).role, 'admin');
  });

  it('filters by actor, action (exact or prefix), target, outcome and time, and pages', async () => {
    assert.deepEqual((await audit.list({ actor: 'alice' })).items.map((e) => e.action), ['user.update', 'user.create']);
    assert.deepEqual((await audit.list({ actor: 'd1' })).items.map((e) => e.action), ['device.enroll']);
    assert.equal((await audit.list({ action: 'user.' })).total, 2);
    assert.equal((await audit.list({ action: 'user*' })).total, 2);
    assert.equal((await audit.list({ action: 'user' })).total, 0);
    assert.equal((await audit.list({ target: 'u2' })).total, 1);
    assert.equal((await audit.list({ outcome: 'denied' })).items[0]!.action, 'login.failed');
    const future = new Date(Date.now() + 60_000).toISOString();
    assert.equal((await audit.list({ since: future })).total, 0);
    assert.equal((await audit.list({ until: future })).total, 4);
    const p1 = await audit.list({ limit: 2 });
    const p2 = await audit.list({ limit: 2, offset: 2 });
    assert.equal(p1.total, 4);
    assert.deepEqual([...p1.items, ...p2.items].map((e) => e.id), (await audit.list({})).items.map((e) => e.id));
  });

  it('cuts oversized details instead of storing them', async () => {
    await audit.record({ actor: { kind: 'anonymous' }, action: 'big.detail', outcome: 'failed', detail: { a: Array.from({ length: 100 }, () => 'x'.repeat(1000)) } });
    const [entry] = (await audit.list({ action: 'big.detail' })).items;
    assert.ok(JSON.stringify(entry!.detail).length <= 4096);
  });

  it('prunes entries older than the retention', async () => {
    assert.equal(await audit.prune(1), 0);
    assert.equal(await audit.prune(-1), 5);
    assert.equal((await audit.list({})).total, 0);
  });

  it('writes a burst of records in batches: every one stored once its call resolves, in call order', async () => {
    // More than one batch (500 rows): the second is written while the first commits.
    const n = 700;
    await Promise.all(Array.from({ length: n }, (_, i) => audit.record({ actor: { kind: 'device', id: `burst-${i}` }, action: 'device.burst', outcome: 'ok', detail: { i } })));
    const page = await audit.list({ action: 'device.burst', limit: 1000 });
    assert.equal(page.total, n);
    // Newest first: the ids, made in call order, keep that order across batches.
    assert.deepEqual(page.items.map((e) => (e.detail as { i: number }).i), Array.from({ length: n }, (_, i) => n - 1 - i));
    await store.write.deleteFrom('audit_log').where('action', '=', 'device.burst').execute();
  });

  it('keeps recording failures out of the caller', async () => {
    const broken = new AuditService({ store: { ...store, write: null as never }, logger: pino({ level: 'silent' }) });
    await broken.record({ actor: { kind: 'anonymous' }, action: 'x', outcome: 'ok' });
  });
}

describe('audit log on SQLite', () => auditSuite(sqliteTarget));
describe('audit log on PostgreSQL', { skip: pgSkip() }, () =>
  auditSuite(() => postgresTarget(PG_URL!)));

describe('audit budget for refused anonymous calls', () => {
  it('writes at most 60 a minute per address and reports what it left out', () => {
    const budget = new UnauthenticatedBudget();
    const t0 = 1_000 * 60_000;
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (budget.take('192.0.2.1', t0 + i).allowed) allowed++;
    assert.equal(allowed, UNAUTHENTICATED_PER_MINUTE);
    assert.equal(budget.take('192.0.2.2', t0).allowed, true, 'other addresses are not affected');
    assert.deepEqual(budget.take('192.0.2.1', t0 + 60_000), { allowed: true, suppressedBefore: 40 });
    assert.deepEqual(budget.take('192.0.2.1', t0 + 60_001), { allowed: true, suppressedBefore: 0 });
  });
});
