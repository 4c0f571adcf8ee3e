/**
 * Issue #15 points 7 and 15: an event stream (`GET /api/v1/events`) lives no longer than the
 * credential that opened it — it ends within 1 s of logout, API token revocation, user
 * deletion or demotion, also when that happened on another manager sharing the database —
 * and one user holds a bounded number of streams open. Real manager processes, streams read
 * over real sockets with fetch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Api, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { expectError } from './support.js';
import { pgSkip } from './store-targets.js';

/** Longest a stream may outlive its credential. */
const END_WITHIN_MS = 1000;

interface OpenedStream {
  /** Resolves with the time the stream ended (its body finished or broke). */
  ended: Promise<number>;
  close(): void;
}

async function openStream(baseUrl: string, token: string): Promise<OpenedStream> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/api/v1/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  if (res.status !== 200) assert.fail(`stream refused: ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  const ended = (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch { /* aborted or reset: ended too */ }
    return Date.now();
  })();
  return { ended, close: () => abort.abort() };
}

/** Runs `revoke` and returns how long after it the stream ended (fails beyond a few seconds). */
async function endsAfter(stream: OpenedStream, revoke: () => Promise<void>): Promise<number> {
  let streamEndedEarly = false;
  void stream.ended.then(() => { streamEndedEarly = true; });
  await new Promise((r) => setTimeout(r, 700)); // the stream is up and has been checked at least once
  assert.equal(streamEndedEarly, false, 'the stream ended before the credential did');
  await revoke();
  const revokedAt = Date.now();
  const endedAt = await Promise.race([stream.ended, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), 5000))]);
  stream.close();
  return endedAt - revokedAt;
}

async function newUser(admin: Api, username: string, role: 'viewer' | 'operator' | 'admin'): Promise<{ id: string; api: Api }> {
  const created = await admin.post('/api/v1/users', { username, password: `${username}-password-1`, role });
  assert.equal(created.status, 201);
  return { id: created.body.id, api: await new Api(admin.baseUrl).login(username, `${username}-password-1`) };
}

describe('event streams end with their credential (issue #15 point 7)', () => {
  let manager: ManagerProcess;
  let admin: Api;
  before(async () => {
    manager = await startManagerProcess();
    admin = await manager.admin();
  });
  after(async () => manager?.close());

  it('ends within 1 s of logout', async () => {
    const u = await newUser(admin, 'stream-logout', 'viewer');
    const stream = await openStream(manager.httpUrl, u.api.token!);
    const ms = await endsAfter(stream, async () => { assert.equal((await u.api.post('/api/v1/auth/logout')).status, 204); });
    assert.ok(ms <= END_WITHIN_MS, `ended ${ms} ms after logout`);
  });

  it('ends within 1 s of revoking the API token that opened it', async () => {
    const created = await admin.post('/api/v1/api-tokens', { name: 'stream-token', role: 'viewer' });
    assert.equal(created.status, 201);
    const stream = await openStream(manager.httpUrl, created.body.token);
    const ms = await endsAfter(stream, async () => { assert.equal((await admin.delete(`/api/v1/api-tokens/${created.body.id}`)).status, 204); });
    assert.ok(ms <= END_WITHIN_MS, `ended ${ms} ms after revocation`);
  });

  it("ends within 1 s of deleting the stream's user", async () => {
    const u = await newUser(admin, 'stream-deleted', 'operator');
    const stream = await openStream(manager.httpUrl, u.api.token!);
    const ms = await endsAfter(stream, async () => { assert.equal((await admin.delete(`/api/v1/users/${u.id}`)).status, 204); });
    assert.ok(ms <= END_WITHIN_MS, `ended ${ms} ms after deletion`);
  });

  it("ends within 1 s of demoting the stream's user, who may open a new one", async () => {
    const u = await newUser(admin, 'stream-demoted', 'operator');
    const stream = await openStream(manager.httpUrl, u.api.token!);
    const ms = await endsAfter(stream, async () => { assert.equal((await admin.patch(`/api/v1/users/${u.id}`, { role: 'viewer' })).status, 200); });
    assert.ok(ms <= END_WITHIN_MS, `ended ${ms} ms after demotion`);
    const again = await openStream(manager.httpUrl, u.api.token!);
    again.close();
  });
});

describe('open event streams per user are capped (issue #15 point 15)', () => {
  let manager: ManagerProcess;
  before(async () => { manager = await startManagerProcess(); });
  after(async () => manager?.close());

  it('refuses a ninth stream of one user with 429, and admits one again once a stream closed', async () => {
    const admin = await manager.admin();
    const u = await newUser(admin, 'stream-hoarder', 'viewer');
    const streams = await Promise.all(Array.from({ length: 8 }, () => openStream(manager.httpUrl, u.api.token!)));
    expectError(await u.api.get('/api/v1/events'), 429, 'too_many_requests', 'event streams');
    assert.equal((await openStream(manager.httpUrl, admin.token!).then((s) => { s.close(); return 200; })), 200, 'other users are not affected');
    streams[0]!.close();
    await streams[0]!.ended;
    await new Promise((r) => setTimeout(r, 200));
    const again = await openStream(manager.httpUrl, u.api.token!);
    again.close();
    for (const s of streams) s.close();
  });
});

describe('a stream on one manager ends when its session is ended on another (shared PostgreSQL)', { skip: pgSkip() }, () => {
  let first: ManagerProcess;
  let second: ManagerProcess;
  before(async () => {
    first = await startManagerProcess({ database: 'postgres' });
    second = await startManagerProcess({ database: { url: first.databaseUrl }, sharingKeysWith: first });
  });
  after(async () => {
    await second?.close();
    await first?.close();
  });

  it('ends within 1 s of logout and of token revocation made on the other manager', async () => {
    const admin = await first.admin();
    const u = await newUser(admin, 'stream-cluster', 'viewer');
    const onSecond = await openStream(second.httpUrl, u.api.token!);
    const ms = await endsAfter(onSecond, async () => { assert.equal((await u.api.post('/api/v1/auth/logout')).status, 204); });
    assert.ok(ms <= END_WITHIN_MS, `ended ${ms} ms after logout on the other manager`);

    const created = await admin.post('/api/v1/api-tokens', { name: 'cluster-stream', role: 'viewer' });
    const tokenStream = await openStream(second.httpUrl, created.body.token);
    const ms2 = await endsAfter(tokenStream, async () => { assert.equal((await admin.delete(`/api/v1/api-tokens/${created.body.id}`)).status, 204); });
    assert.ok(ms2 <= END_WITHIN_MS, `ended ${ms2} ms after revocation on the other manager`);
  });
});
