import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Kysely, sql } from 'kysely';
import { pino } from 'pino';
import type { HostFacts, StatusMessage } from '@pallas/protocol';
import type { Broker } from '../src/broker/broker.js';
import { AppError } from '../src/errors.js';
import { SessionsService } from '../src/services/auth/sessions-service.js';
import { DeviceCredentials } from '../src/services/devices/device-credentials.js';
import { DevicesService } from '../src/services/devices/devices-service.js';
import { StatusBuffer } from '../src/services/devices/status-buffer.js';
import { EnrollmentService } from '../src/services/enrollment/enrollment-service.js';
import { UsersService } from '../src/services/users/users-service.js';
import { postgresDialect } from '../src/store/postgres/postgres-dialect.js';
import type { Database } from '../src/store/schema.js';
import { openStore, type Store } from '../src/store/store.js';
import { sampleHostFacts } from '@pallas/testkit';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget, type StoreTarget } from './store-targets.js';

const logger = pino({ level: 'silent' });

const facts = (hostname: string): HostFacts => sampleHostFacts(hostname);

/** Records what the registry asks of the broker; the registry is what is under test here. */
function recordingBroker(): Broker & { published: string[]; disconnected: string[] } {
  const published: string[] = [];
  const disconnected: string[] = [];
  return {
    published,
    disconnected,
    kind: 'embedded',
    health: () => ({ ok: true }),
    ports: { mqtt: 1, mqtts: null },
    addressOf: () => null,
    start: async () => {},
    stop: async () => {},
    publish: async (topic) => void published.push(topic),
    subscribe: async () => {},
    disconnect: (id) => void disconnected.push(id),
    connectedCount: () => 0,
    on: () => {},
  };
}

const rejectsWith = (code: string) => (err: unknown) => err instanceof AppError && err.code === code;

/** One suite, run against every store dialect. */
function storeSuite(kind: 'sqlite' | 'postgres', makeTarget: () => Promise<StoreTarget>) {
  let target: StoreTarget;
  let store: Store;
  let users: UsersService;
  let sessions: SessionsService;
  let credentials: DeviceCredentials;
  let status: StatusBuffer;
  let devices: DevicesService;
  let enrollment: EnrollmentService;
  const broker = recordingBroker();

  before(async () => {
    target = await makeTarget();
    store = await openStore(target.url);
    await store.migrate();
    await store.migrate(); // migrating twice is a no-op
    users = new UsersService(store);
    sessions = new SessionsService(store, users, 3600);
    credentials = new DeviceCredentials(store);
    status = new StatusBuffer(store, 50, logger, () => {});
    devices = new DevicesService({ store, broker, credentials, status, logger });
    enrollment = new EnrollmentService({ store, credentials, settings: { keepaliveSec: 30, statusIntervalSec: 60 }, logger });
  });
  after(async () => {
    await status.stop();
    await store.close();
    await target.dispose();
  });

  it('creates the first admin once, with a generated password that logs in', async () => {
    const first = await users.bootstrapAdmin();
    assert.equal(first.created, true);
    assert.ok(first.generatedPassword && first.generatedPassword.length >= 20);
    assert.deepEqual(await users.bootstrapAdmin('another-password'), { created: false });
    const row = await store.read.selectFrom('users').select('password_hash').where('username', '=', 'admin').executeTakeFirstOrThrow();
    assert.ok(!row.password_hash.includes(first.generatedPassword), 'password is stored hashed');
    const login = await sessions.login('admin', first.generatedPassword);
    assert.equal(login.user.role, 'admin');
    assert.equal((await sessions.verify(login.token))?.username, 'admin');
    await sessions.logout(login.token);
    assert.equal(await sessions.verify(login.token), null);
  });

  it('manages users and refuses duplicates and removing the last admin', async () => {
    const bob = await users.create({ username: 'bob', password: 'bob-password', role: 'viewer' });
    await assert.rejects(users.create({ username: 'bob', password: 'x-password', role: 'viewer' }), rejectsWith('conflict'));
    const updated = await users.update(bob.id, { role: 'operator' });
    assert.equal(updated.role, 'operator');
    const page = await users.list(10, 0);
    assert.equal(page.total, 2);
    assert.deepEqual(page.items.map((u) => u.username), ['admin', 'bob']);
    const admin = page.items.find((u) => u.username === 'admin')!;
    await assert.rejects(users.remove(admin.id), rejectsWith('conflict'));
    await assert.rejects(users.update(admin.id, { role: 'viewer' }), rejectsWith('conflict'));
    assert.equal(await users.authenticate('bob', 'wrong-password'), null);
    assert.equal(await users.authenticate('nobody', 'whatever'), null);
    await users.remove(bob.id);
    await assert.rejects(users.get(bob.id), rejectsWith('not_found'));
  });

  it('enrolls devices within a token\'s limits and refuses a claimed id', async () => {
    const token = await enrollment.createToken('admin', { name: 'two', maxUses: 2 });
    const a = randomUUID();
    const b = randomUUID();
    const resA = await enrollment.enroll({ token: token.token, deviceId: a, facts: facts('host-a') }, 'mqtt://x:1');
    assert.equal(resA.mqtt.username, a);
    assert.equal(resA.mqtt.clientId, a);
    assert.equal(await credentials.verify(a, resA.mqtt.password), true);
    assert.equal(await credentials.verify(a, 'pds_wrong'), false);

    // Someone else claiming A's id with a valid token gets a conflict, and A's secret still works.
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: a, facts: facts('evil') }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
    assert.equal(await credentials.verify(a, resA.mqtt.password), true);

    // A itself may re-enroll with its secret: new secret, old one stops working, no token use spent.
    const again = await enrollment.enroll({ token: token.token, deviceId: a, facts: facts('host-a'), secret: resA.mqtt.password }, 'mqtt://x:1');
    assert.equal(await credentials.verify(a, again.mqtt.password), true);
    assert.equal(await credentials.verify(a, resA.mqtt.password), false);

    await enrollment.enroll({ token: token.token, deviceId: b, facts: facts('host-b') }, 'mqtt://x:1');
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: randomUUID(), facts: facts('c') }, 'mqtt://x:1'), rejectsWith('enrollment_token_invalid'));
    const listed = (await enrollment.listTokens()).items.find((t) => t.id === token.id)!;
    assert.equal(listed.uses, 2);
    assert.ok(!('token' in listed), 'the secret is never listed');

    await enrollment.revokeToken(token.id);
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: randomUUID(), facts: facts('d') }, 'mqtt://x:1'), rejectsWith('enrollment_token_invalid'));
    await assert.rejects(enrollment.enroll({ token: 'pet_unknown_unknown_unknown', deviceId: randomUUID(), facts: facts('e') }, 'mqtt://x:1'), rejectsWith('enrollment_token_invalid'));
  });

  it('answers a first enrollment asked again with its enrollment key (the answer was lost) with a new credential, and no one else', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    const other = await enrollment.createToken('admin', { maxUses: 5 });
    const id = randomUUID();
    const key = 'k'.repeat(43);
    const first = await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('lost'), secret: key }, 'mqtt://x:1');
    // The answer never arrived; the agent asks again, same token, same key: a new credential,
    // no use of the (single-use) token spent, the lost one no longer valid.
    const again = await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('lost'), secret: key }, 'mqtt://x:1');
    assert.notEqual(again.mqtt.password, first.mqtt.password);
    assert.equal(await credentials.verify(id, again.mqtt.password), true);
    assert.equal(await credentials.verify(id, first.mqtt.password), false);
    assert.equal((await enrollment.listTokens(500)).items.find((t) => t.id === token.id)!.uses, 1);
    // Lost twice: still the same answer.
    const third = await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('lost'), secret: key }, 'mqtt://x:1');
    assert.equal(await credentials.verify(id, third.mqtt.password), true);
    // Anyone else claiming the id: no key, another key, the key with another token.
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: id, facts: facts('evil') }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: id, facts: facts('evil'), secret: 'x'.repeat(43) }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
    await assert.rejects(enrollment.enroll({ token: other.token, deviceId: id, facts: facts('evil'), secret: key }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
    assert.equal(await credentials.verify(id, third.mqtt.password), true);
    // Once the device has connected it has its credential: the key proves nothing any more.
    await store.write.updateTable('devices').set({ last_seen_at: new Date().toISOString() }).where('id', '=', id).execute();
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: id, facts: facts('lost'), secret: key }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
    // Nor after a re-enrollment with the credential, whatever last_seen_at says.
    const id2 = randomUUID();
    const own = await enrollment.enroll({ token: other.token, deviceId: id2, facts: facts('own'), secret: key }, 'mqtt://x:1');
    await enrollment.enroll({ token: other.token, deviceId: id2, facts: facts('own'), secret: own.mqtt.password }, 'mqtt://x:1');
    await assert.rejects(enrollment.enroll({ token: other.token, deviceId: id2, facts: facts('own'), secret: key }, 'mqtt://x:1'), rejectsWith('device_id_conflict'));
  });

  it('refuses an expired token', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 5 });
    await store.write.updateTable('enrollment_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', token.id).execute();
    await assert.rejects(enrollment.enroll({ token: token.token, deviceId: randomUUID(), facts: facts('late') }, 'mqtt://x:1'), /expired/);
  });

  it('does not let concurrent enrollments overrun a token', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 3 });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => enrollment.enroll({ token: token.token, deviceId: randomUUID(), facts: facts(`race-${i}`) }, 'mqtt://x:1')),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
  });

  // On SQLite, enrollments that arrive together share one commit (GroupCommit); each must still
  // decide alone, see the ones before it, and leave nothing behind when refused.
  // (PostgreSQL runs them side by side in transactions of their own: which of them wins a race
  // is not fixed there; the test above covers its limits.)
  if (kind === 'sqlite') it('decides each of a burst of enrollments as if alone: refusals leave nothing, uses are exact', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 3 });
    const owner = randomUUID();
    const first = await enrollment.enroll({ token: token.token, deviceId: owner, facts: facts('owner') }, 'mqtt://x:1');
    const twin = randomUUID();
    const lateIds = [randomUUID(), randomUUID()];
    const results = await Promise.allSettled([
      enrollment.enroll({ token: token.token, deviceId: owner, facts: facts('thief') }, 'mqtt://x:1'), // claimed id, no secret
      enrollment.enroll({ token: token.token, deviceId: owner, facts: facts('owner'), secret: first.mqtt.password }, 'mqtt://x:1'), // re-enrolls, no use spent
      enrollment.enroll({ token: token.token, deviceId: twin, facts: facts('twin-1') }, 'mqtt://x:1'), // second use
      enrollment.enroll({ token: token.token, deviceId: twin, facts: facts('twin-2') }, 'mqtt://x:1'), // sees twin-1: conflict
      enrollment.enroll({ token: token.token, deviceId: lateIds[0]!, facts: facts('late-0') }, 'mqtt://x:1'), // third use
      enrollment.enroll({ token: token.token, deviceId: lateIds[1]!, facts: facts('late-1') }, 'mqtt://x:1'), // used up
    ]);
    assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? 'ok' : (r.reason as AppError).code),
      ['device_id_conflict', 'ok', 'ok', 'device_id_conflict', 'ok', 'enrollment_token_invalid']);
    assert.equal((await enrollment.listTokens()).items.find((t) => t.id === token.id)!.uses, 3);
    const reEnrolled = (results[1] as PromiseFulfilledResult<{ mqtt: { password: string } }>).value;
    assert.equal(await credentials.verify(owner, reEnrolled.mqtt.password), true);
    assert.equal(await credentials.verify(owner, first.mqtt.password), false);
    assert.equal((await devices.get(twin)).name, 'twin-1');
    await assert.rejects(devices.get(lateIds[1]!), rejectsWith('not_found'));
  });

  it('lists devices with paging, name, tag, hypervisor and presence filters', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 10 });
    const ids: string[] = [];
    for (const name of ['shop-berlin', 'shop-paris', 'tower-17', 'Ship_Alpha']) {
      const id = randomUUID();
      ids.push(id);
      await enrollment.enroll({ token: token.token, deviceId: id, facts: facts(name) }, 'mqtt://x:1');
    }
    const shops = await devices.list({ name: 'SHOP', limit: 10 });
    assert.deepEqual(shops.items.map((d) => d.name), ['shop-berlin', 'shop-paris']);
    assert.deepEqual((await devices.list({ name: 'SHOP', hypervisor: 'sim' })).items.map((d) => d.name), ['shop-berlin', 'shop-paris']);
    assert.equal((await devices.list({ name: 'SHOP', hypervisor: 'esxi' })).total, 0);
    // LIKE wildcards in the search text are taken literally.
    assert.deepEqual((await devices.list({ name: 'p_a' })).items.map((d) => d.name), ['Ship_Alpha']);
    const page = await devices.list({ limit: 2, offset: 1 });
    assert.equal(page.items.length, 2);
    assert.ok(page.total >= 4);

    await devices.patch(ids[0]!, { tags: ['eu', 'retail'] });
    await devices.patch(ids[1]!, { tags: ['eu'], name: 'shop-paris-2' });
    assert.deepEqual((await devices.list({ tag: 'eu' })).items.map((d) => d.name).sort(), ['shop-berlin', 'shop-paris-2']);
    assert.deepEqual((await devices.get(ids[0]!)).tags, ['eu', 'retail']);

    status.offer(ids[2]!, { presence: 'online', lastSeenAt: new Date().toISOString() });
    await status.flush();
    const online = await devices.list({ presence: 'online' });
    assert.deepEqual(online.items.map((d) => d.id), [ids[2]]);
    await devices.markAllOffline();
    assert.equal((await devices.list({ presence: 'online' })).total, 0);
  });

  it('commits only through its lazy writer without waiting for the WAL flush (PostgreSQL); on SQLite the lazy writer is the writer', async () => {
    if (target.name === 'sqlite') {
      assert.equal(store.lazy, store.write);
      return;
    }
    const setting = async (db: Store['write']) => (await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(db)).rows[0]!.synchronous_commit;
    assert.equal(await setting(store.lazy), 'off');
    assert.equal(await setting(store.write), 'on');
    assert.equal(await setting(store.read), 'on');
    // What it writes is visible to the other sessions at once.
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    const id = randomUUID();
    await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('lazy') }, 'mqtt://x:1');
    await store.lazy.updateTable('devices').set({ name: 'lazy-written' }).where('id', '=', id).execute();
    assert.equal((await store.read.selectFrom('devices').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name, 'lazy-written');
    // A URL that sets session options of its own keeps them, and the lazy writer's is added
    // (node-postgres takes the URL's `options` over the pool's).
    const url = new URL(target.url);
    url.searchParams.set('options', '-c statement_timeout=4321');
    const own = new Kysely<Database>({ dialect: postgresDialect(url.toString(), 1, true) });
    try {
      assert.equal(await setting(own), 'off');
      assert.equal((await sql<{ statement_timeout: string }>`show statement_timeout`.execute(own)).rows[0]!.statement_timeout, '4321ms');
    } finally {
      await own.destroy();
    }
  });

  it('coalesces status updates and writes the latest', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    const id = randomUUID();
    await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('coalesce') }, 'mqtt://x:1');
    let flushed = { messages: 0, rows: 0 };
    const buffer = new StatusBuffer(store, 10_000, logger, (messages, rows) => {
      flushed = { messages: flushed.messages + messages, rows: flushed.rows + rows };
    });
    for (let seq = 1; seq <= 5; seq++) {
      const msg: StatusMessage = {
        seq, sentAt: new Date().toISOString(), facts: { ...facts('coalesce'), uptimeSec: seq },
        vms: [{ id: 'vm-1', name: 'web', powerState: seq % 2 ? 'on' : 'off', vcpus: 2, memoryMB: 1024, diskGB: 10 }],
      };
      buffer.offer(id, { presence: 'online', lastSeenAt: new Date().toISOString(), facts: msg.facts, seq });
    }
    await buffer.stop();
    assert.deepEqual(flushed, { messages: 5, rows: 1 });
    const device = await devices.get(id);
    assert.equal(device.facts?.uptimeSec, 5);
    assert.deepEqual(device.vms, [], 'the VM list is DeviceInventory\'s to write, not the buffer\'s');
    assert.equal(device.presence, 'online');
  });

  it('a status row the database refuses holds back no other device, and is dropped after three tries', async () => {
    // A value the store refuses: on PostgreSQL the real one (a seq beyond the integer
    // column); SQLite takes any number, so a trigger refuses the same row there.
    const refused = target.name === 'postgres' ? 2 ** 40 : 666;
    if (target.name === 'sqlite') {
      await sql`CREATE TRIGGER refuse_seq BEFORE UPDATE ON devices WHEN NEW.status_seq = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END`.execute(store.write);
    }
    try {
      const token = await enrollment.createToken('admin', { maxUses: 2 });
      const [bad, good] = [randomUUID(), randomUUID()];
      for (const id of [bad, good]) await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('poison') }, 'mqtt://x:1');
      let rowsWritten = 0;
      const logs: Array<{ msg: string; device?: string }> = [];
      const capture = pino({ level: 'error' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
      const buffer = new StatusBuffer(store, 10_000, capture, (_messages, rows) => void (rowsWritten += rows));
      for (let round = 1; round <= 3; round++) {
        buffer.offer(bad, { presence: 'online', lastSeenAt: new Date().toISOString(), facts: { ...facts('poison'), uptimeSec: round }, seq: refused });
        buffer.offer(good, { presence: 'online', lastSeenAt: new Date().toISOString(), facts: { ...facts('poison'), uptimeSec: round }, seq: round });
        await buffer.flush();
        assert.equal((await devices.get(good)).facts?.uptimeSec, round, `round ${round}: the good device's status is written`);
      }
      assert.equal(rowsWritten, 3, 'only the good rows were written');
      assert.ok(logs.some((l) => l.device === bad && /dropped/.test(l.msg)), 'the bad row was dropped after its third refusal');
      // The bad row is gone: the next flush is one clean write.
      const before = logs.length;
      buffer.offer(good, { presence: 'online', lastSeenAt: new Date().toISOString(), seq: 9 });
      await buffer.stop();
      assert.equal(rowsWritten, 4);
      assert.equal(logs.length, before, 'nothing failed once the bad row was dropped');
      assert.equal((await devices.get(bad)).facts?.uptimeSec, 1000, 'the refused rows never reached the store');
    } finally {
      if (target.name === 'sqlite') await sql`DROP TRIGGER refuse_seq`.execute(store.write);
    }
  });

  it('a last will heard before the stored online changes nothing when it is flushed after it (two managers); one heard after it takes the device offline, its last contact kept', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 2 });
    const [back, gone] = [randomUUID(), randomUUID()];
    for (const id of [back, gone]) await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('will') }, 'mqtt://x:1');
    const online = new StatusBuffer(store, 60_000, logger, () => {});
    for (const id of [back, gone]) online.offer(id, { presence: 'online', lastSeenAt: '2026-03-01T10:00:02.000Z' });
    await online.stop();
    // `back`: the old connection's will reached the other manager before the new connection's
    // online reached this one. `gone`: the will came after its last report.
    const wills = new StatusBuffer(store, 60_000, logger, () => {});
    wills.offer(back, { presence: 'offline', heardAt: '2026-03-01T10:00:01.000Z' });
    wills.offer(gone, { presence: 'offline', heardAt: '2026-03-01T10:00:03.000Z' });
    await wills.stop();
    const row = (id: string) => store.write.selectFrom('devices').select(['presence', 'last_seen_at']).where('id', '=', id).executeTakeFirstOrThrow();
    assert.deepEqual(await row(back), { presence: 'online', last_seen_at: '2026-03-01T10:00:02.000Z' });
    assert.deepEqual(await row(gone), { presence: 'offline', last_seen_at: '2026-03-01T10:00:02.000Z' });
  });

  it('a report received before the stored one changes nothing when it is flushed after it (two managers), in chunks and row by row', async () => {
    // Two managers share a device's reports and flush on their own timers: the older report
    // can reach the store last. It must not put facts, presence or last contact back in time.
    const token = await enrollment.createToken('admin', { maxUses: 3 });
    const ids = [randomUUID(), randomUUID()];
    const poison = randomUUID();
    for (const id of [...ids, poison]) await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('order') }, 'mqtt://x:1');
    const newer = new StatusBuffer(store, 60_000, logger, () => {});
    const older = new StatusBuffer(store, 60_000, logger, () => {});
    for (const id of ids) {
      newer.offer(id, { presence: 'online', lastSeenAt: '2026-03-01T10:00:02.000Z', facts: { ...facts('order'), uptimeSec: 2 }, seq: 2 });
      older.offer(id, { presence: 'offline', lastSeenAt: '2026-03-01T10:00:01.000Z', facts: { ...facts('order'), uptimeSec: 1 }, seq: 1 });
    }
    await newer.stop();
    // In a chunk: both devices' older rows.
    await older.stop();
    // Row by row: a row the store refuses makes the flush fall back to the per-row statement.
    const refused = target.name === 'postgres' ? 2 ** 40 : 666;
    if (target.name === 'sqlite') {
      await sql`CREATE TRIGGER refuse_seq BEFORE UPDATE ON devices WHEN NEW.status_seq = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END`.execute(store.write);
    }
    try {
      const single = new StatusBuffer(store, 60_000, logger, () => {});
      single.offer(ids[1]!, { presence: 'offline', lastSeenAt: '2026-03-01T10:00:00.500Z', facts: { ...facts('order'), uptimeSec: 0 }, seq: 0 });
      single.offer(poison, { presence: 'online', lastSeenAt: '2026-03-01T10:00:00.500Z', seq: refused });
      await single.flush();
      single.discard(poison);
      await single.stop();
    } finally {
      if (target.name === 'sqlite') await sql`DROP TRIGGER refuse_seq`.execute(store.write);
    }
    for (const id of ids) {
      const d = await devices.get(id);
      assert.equal(d.lastSeenAt, '2026-03-01T10:00:02.000Z', 'last contact stays the newest');
      assert.equal(d.facts?.uptimeSec, 2, 'facts stay the newest report\'s');
      assert.equal(d.presence, 'online');
    }
    // A newer one still goes in, and a row with no time of its own (a last will) too.
    const later = new StatusBuffer(store, 60_000, logger, () => {});
    later.offer(ids[0]!, { presence: 'online', lastSeenAt: '2026-03-01T10:00:03.000Z', facts: { ...facts('order'), uptimeSec: 3 }, seq: 3 });
    later.offer(ids[1]!, { presence: 'offline' });
    await later.stop();
    assert.equal((await devices.get(ids[0]!)).facts?.uptimeSec, 3);
    assert.equal((await devices.get(ids[1]!)).presence, 'offline');
  });

  it('a flush of 1,200 mixed partial updates writes in chunks exactly what the per-row statements write', async () => {
    // Two identical sets of rows take the same updates: set A through the chunked statements,
    // set B through the per-row fallback (one row the store refuses fails B's batch, so every
    // other row of it goes in one by one). The rows must come out the same.
    const n = 1200;
    const now = new Date().toISOString();
    const a = Array.from({ length: n }, (_, i) => `set-a-${String(i).padStart(5, '0')}-${randomUUID()}`);
    const b = Array.from({ length: n }, (_, i) => `set-b-${String(i).padStart(5, '0')}-${randomUUID()}`);
    const poison = `set-b-poison-${randomUUID()}`;
    const initial = (id: string, i: number) => ({
      id, name: `set-${i}`, secret_hash: 'x', status: 'active', presence: i % 2 ? 'offline' : 'online', enrolled_at: now, updated_at: '2026-01-01T00:00:00.000Z',
      // A third of the rows have never reported: nothing stored for COALESCE to keep.
      last_seen_at: i % 3 === 0 ? null : '2026-01-01T00:00:00.000Z',
      facts: i % 3 === 0 ? null : JSON.stringify(facts(`old-${i}`)),
      hypervisor_kind: i % 3 === 0 ? null : 'kvm', agent_version: i % 3 === 0 ? null : '0.0.1', status_seq: i % 3 === 0 ? 0 : 7,
    });
    const rows = [...a.map(initial), ...b.map(initial), initial(poison, 0)];
    for (let i = 0; i < rows.length; i += 200) await store.write.insertInto('devices').values(rows.slice(i, i + 200)).execute();
    // Mixed partial updates: a full report, a last will (presence only), presence with a
    // contact time, facts without presence; some rows take two messages.
    const update = (i: number) => {
      const f = { ...facts(`new-${i}`), agentVersion: `1.${i}.0`, uptimeSec: i };
      switch (i % 4) {
        case 0: return { presence: 'online' as const, lastSeenAt: `2026-02-01T00:00:${String(i % 60).padStart(2, '0')}.000Z`, facts: f, seq: i + 100 };
        case 1: return { presence: 'offline' as const };
        case 2: return { presence: 'online' as const, lastSeenAt: '2026-02-02T00:00:00.000Z' };
        default: return { facts: f, seq: i + 200 };
      }
    };
    const offerAll = (buffer: StatusBuffer, ids: string[]) => ids.forEach((id, i) => {
      buffer.offer(id, update(i));
      if (i % 5 === 0) buffer.offer(id, { seq: i + 300 });
    });
    const refused = target.name === 'postgres' ? 2 ** 40 : 666;
    if (target.name === 'sqlite') {
      await sql`CREATE TRIGGER refuse_seq BEFORE UPDATE ON devices WHEN NEW.status_seq = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END`.execute(store.write);
    }
    try {
      let flushedA = { messages: 0, rows: 0 };
      const writtenA: string[] = [];
      const errors: string[] = [];
      const capture = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
      const bufferA = new StatusBuffer(store, 60_000, capture, (messages, rows) => void (flushedA = { messages: flushedA.messages + messages, rows: flushedA.rows + rows }));
      bufferA.onWritten = (written) => void writtenA.push(...written.map(([id]) => id));
      offerAll(bufferA, a);
      // A device removed meanwhile: its row is simply not there.
      bufferA.offer(`gone-${randomUUID()}`, { presence: 'online', seq: 1 });
      await bufferA.stop();
      assert.deepEqual(errors, [], 'the chunks went in: no fallback to row by row');
      assert.deepEqual(flushedA, { messages: n + n / 5 + 1, rows: n + 1 });
      assert.equal(writtenA.length, n + 1);

      const bufferB = new StatusBuffer(store, 60_000, logger, () => {});
      offerAll(bufferB, b);
      bufferB.offer(poison, { presence: 'online', seq: refused });
      await bufferB.flush();
      bufferB.discard(poison);
      await bufferB.stop();
    } finally {
      if (target.name === 'sqlite') await sql`DROP TRIGGER refuse_seq`.execute(store.write);
    }
    const read = async (ids: string[]) => {
      const out = new Map<string, Record<string, unknown>>();
      for (let i = 0; i < ids.length; i += 500) {
        for (const r of await store.write.selectFrom('devices').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute()) out.set(r.id, r);
      }
      return ids.map((id) => out.get(id)!);
    };
    const [rowsA, rowsB] = [await read(a), await read(b)];
    const started = Date.parse(now);
    for (let i = 0; i < n; i++) {
      const { id: _a, updated_at: updatedA, ...restA } = rowsA[i]!;
      const { id: _b, updated_at: updatedB, ...restB } = rowsB[i]!;
      assert.deepEqual(restA, restB, `row ${i} (${i % 4})`);
      if (i % 4 === 0 || i % 4 === 2) assert.equal(updatedA, updatedB, `row ${i}: updated_at is the message's time`);
      else for (const u of [updatedA, updatedB]) assert.ok(Date.parse(u as string) >= started, `row ${i}: updated_at is the write's time`);
    }
    // And what that is, for a few rows: absent fields kept, present ones written.
    assert.equal(rowsA[0]!.status_seq, 300, 'row 0: the later seq of its two messages');
    assert.equal(JSON.parse(rowsA[0]!.facts as string).uptimeSec, 0);
    assert.equal(rowsA[1]!.presence, 'offline');
    assert.equal(rowsA[1]!.last_seen_at, '2026-01-01T00:00:00.000Z', 'a last will keeps the last contact');
    assert.equal(rowsA[3]!.presence, 'offline', 'facts without presence keep the presence');
    assert.equal(rowsA[1]!.hypervisor_kind, 'kvm', 'no facts: the stored kind stays');
    assert.equal(rowsA[3]!.status_seq, 203);
    assert.equal(rowsA[6]!.facts, null, 'nothing stored, nothing sent: still nothing');
    assert.equal(rowsA[6]!.last_seen_at, '2026-02-02T00:00:00.000Z');
    assert.equal(rowsA[7]!.agent_version, '1.7.0');
  });

  // Several managers share a database on PostgreSQL only (a SQLite file has one manager): not
  // registered on SQLite, where a skipped test would fail a strict run.
  if (kind === 'postgres') it('two managers flushing overlapping devices at once never deadlock, and each row ends as one of them wrote it', async () => {
    // Two stores (two connection pools: two managers) on one database, each with its own
    // buffer; their devices overlap, offered in opposite orders, written at the same moment.
    const other = await openStore(target.url);
    try {
      const n = 1500;
      const ids = Array.from({ length: n }, () => randomUUID());
      const now = new Date().toISOString();
      const rows = ids.map((id, i) => ({ id, name: `race-${i}`, secret_hash: 'x', status: 'active', presence: 'offline', enrolled_at: now, updated_at: now, status_seq: 0 }));
      for (let i = 0; i < rows.length; i += 300) await store.write.insertInto('devices').values(rows.slice(i, i + 300)).execute();
      const first = ids.slice(0, 1200);
      const second = ids.slice(300).reverse();
      const logs: string[] = [];
      const capture = pino({ level: 'error' }, { write: (line: string) => void logs.push(line) });
      const rowsWritten = [0, 0];
      const buffers = [store, other].map((s, w) => new StatusBuffer(s, 60_000, capture, (_m, r) => void (rowsWritten[w]! += r)));
      const rounds = 8;
      for (let round = 1; round <= rounds; round++) {
        [first, second].forEach((set, w) => set.forEach((id) =>
          buffers[w]!.offer(id, { presence: 'online', lastSeenAt: now, facts: { ...facts(`w${w}`), uptimeSec: round }, seq: round * 10 + w })));
        await Promise.all(buffers.map((b) => b.flush()));
      }
      await Promise.all(buffers.map((b) => b.stop()));
      assert.deepEqual(logs, [], 'no write failed (a deadlock would be logged, then written row by row)');
      assert.deepEqual(rowsWritten, [first.length * rounds, second.length * rounds]);
      const stored = new Map<string, { seq: number; host: string; uptime: number }>();
      for (let i = 0; i < n; i += 500) {
        for (const r of await store.write.selectFrom('devices').select(['id', 'status_seq', 'facts']).where('id', 'in', ids.slice(i, i + 500)).execute()) {
          const f = JSON.parse(r.facts!) as HostFacts;
          stored.set(r.id, { seq: r.status_seq, host: f.hostname, uptime: f.uptimeSec });
        }
      }
      ids.forEach((id, i) => {
        const row = stored.get(id)!;
        const writers = [i < 1200 ? 0 : -1, i >= 300 ? 1 : -1].filter((w) => w >= 0);
        const w = row.seq % 10;
        assert.ok(writers.includes(w), `row ${i}: written by writer ${w}, which never wrote it`);
        assert.deepEqual(row, { seq: rounds * 10 + w, host: `w${w}`, uptime: rounds }, `row ${i}: all of one writer's last write`);
      });
    } finally {
      await other.close();
    }
  });

  it('decommissions: credential stops working, the agent is told, the row is gone', async () => {
    const token = await enrollment.createToken('admin', { maxUses: 1 });
    const id = randomUUID();
    const res = await enrollment.enroll({ token: token.token, deviceId: id, facts: facts('old') }, 'mqtt://x:1');
    await devices.patch(id, { tags: ['x'] });
    await devices.decommission(id);
    assert.equal(await credentials.verify(id, res.mqtt.password), false);
    assert.ok(broker.published.includes(`pallas/v1/d/${id}/cmd/control`));
    await assert.rejects(devices.get(id), rejectsWith('not_found'));
    // The same id may enroll again later with a new token (a re-installed device keeps its id).
    const token2 = await enrollment.createToken('admin', { maxUses: 1 });
    const back = await enrollment.enroll({ token: token2.token, deviceId: id, facts: facts('old') }, 'mqtt://x:1');
    assert.equal(back.deviceId, id);
  });
}

describe('store on SQLite', () => storeSuite('sqlite', sqliteTarget));

describe('store on PostgreSQL', { skip: pgSkip() }, () =>
  storeSuite('postgres', () => postgresTarget(PG_URL!)));
