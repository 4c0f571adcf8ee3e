/**
 * Login throttling: the policy on a fake clock, then over HTTP (429 with Retry-After, per
 * account and per address, a success resets the account) and the password policy's 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, Api, defaultTestDatabase, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { AppError } from '../src/errors.js';
import { LoginThrottle } from '../src/services/auth/login-throttle.js';
import { hashPassword, verifyPassword } from '../src/security/passwords.js';
import { openStore, type Store } from '../src/store/store.js';
import { PG_URL, pgSkip, postgresTarget, sqliteTarget } from './store-targets.js';
import { expectError } from './support.js';

/** A fresh store of the kind this pass runs on (PALLAS_TEST_DATABASE), migrated. */
async function throttleStore(): Promise<{ store: Store; dispose(): Promise<void> }> {
  const target = defaultTestDatabase() === 'postgres' ? await postgresTarget(PG_URL!) : await sqliteTarget();
  const store = await openStore(target.url);
  await store.migrate();
  return { store, dispose: async () => { await store.close(); await target.dispose(); } };
}

/**
 * Seconds of lock a new attempt on `user` from `ip` would be told to wait (0: not locked).
 * When locked, `begin` must refuse with exactly that Retry-After; when not, the store says so
 * (a probe through `begin` would itself count, and could set the lock it looks for).
 */
async function lockedFor(throttle: LoginThrottle, store: Store, now: number, user: string, ip: string): Promise<number> {
  const rows = await store.write.selectFrom('login_throttle').select('locked_until')
    .where('throttle_key', 'in', [`a:${user.toLowerCase()}`, `i:${ip}`]).execute();
  const left = Math.max(0, ...rows.map((r) => Date.parse(r.locked_until) - now));
  if (left === 0) return 0;
  const expected = Math.ceil(left / 1000);
  await assert.rejects(throttle.begin(user, ip), (err: unknown) => {
    assert.ok(err instanceof AppError && err.code === 'too_many_requests');
    // A second boundary may pass between the read above and the throttle's own clock.
    assert.ok([String(expected), String(expected - 1)].includes(err.headers!['retry-after']!), `Retry-After ${err.headers!['retry-after']}, expected ${expected}`);
    return true;
  });
  return expected;
}

/**
 * A lock of 30 s read on the real clock: the attempts that set it took their time, a few
 * seconds on a loaded machine, so what is left of it is under 30 s and well over 20.
 */
function assertFreshLock(seconds: number): void {
  assert.ok(seconds > 20 && seconds <= 30, `locked for ${seconds} s`);
}

async function fail(throttle: LoginThrottle, user: string, ip: string): Promise<void> {
  await (await throttle.begin(user, ip)).settle('wrong');
}

describe('login throttle policy (in the store)', () => {
  let db: Awaited<ReturnType<typeof throttleStore>>;
  before(async () => { db = await throttleStore(); });
  after(async () => db?.dispose());

  it('locks an account after 5 failures, doubling the lock per further failure up to 15 min', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const t = new LoginThrottle(db.store, {}, () => now);
    for (let i = 0; i < 4; i++) await fail(t, 'alice', `10.0.0.${i}`);
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 0);
    await fail(t, 'ALICE', '10.0.0.9'); // names are compared case-insensitively
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 30);
    now += 30_000;
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 0);
    await fail(t, 'alice', '10.0.0.10');
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 60);
    for (const lockSec of [60, 120, 240, 480, 900]) {
      now += lockSec * 1000; // each lock has run out, and the next failure doubles it
      assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 0);
      await fail(t, 'alice', '10.0.0.11');
    }
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.1'), 900);
    assert.equal(await lockedFor(t, db.store, now, 'alice', '10.0.1.2'), 900, 'a lock seen once is refused again (cached, same answer)');
    assert.equal(await lockedFor(t, db.store, now, 'bob', '10.0.1.1'), 0, 'other accounts are not affected');
  });

  it('forgets failures after the window, and a success clears the account', async () => {
    let now = Date.parse('2026-02-01T00:00:00Z');
    const t = new LoginThrottle(db.store, {}, () => now);
    for (let i = 0; i < 4; i++) await fail(t, 'carol', '10.0.0.1');
    now += 16 * 60_000;
    await fail(t, 'carol', '10.0.0.1');
    assert.equal(await lockedFor(t, db.store, now, 'carol', '10.0.0.2'), 0, 'old failures no longer count');
    for (let i = 0; i < 3; i++) await fail(t, 'carol', '10.0.0.1');
    await (await t.begin('carol', '10.0.0.1')).settle('right');
    await fail(t, 'carol', '10.0.0.1');
    assert.equal(await lockedFor(t, db.store, now, 'carol', '10.0.0.2'), 0);
  });

  it('locks an address that sprays many accounts, and a success elsewhere does not reset it', async () => {
    const t = new LoginThrottle(db.store, { maxAddressFailures: 20 });
    for (let i = 0; i < 20; i++) await fail(t, `user${i}`, '192.0.2.7');
    const own = await t.begin('attackers-own-account', '192.0.2.99');
    await own.settle('right');
    assertFreshLock(await lockedFor(t, db.store, Date.now(), 'fresh-name', '192.0.2.7'));
    assert.equal(await lockedFor(t, db.store, Date.now(), 'fresh-name', '192.0.2.8'), 0);
  });

  it('counts each attempt before its password is checked: of 50 parallel attempts at most the limit pass', async () => {
    const t = new LoginThrottle(db.store);
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => t.begin('dora', `198.51.100.${i}`)));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 5);
    assertFreshLock(await lockedFor(t, db.store, Date.now(), 'dora', '198.51.100.200'));
  });

  it('prunes rows whose window is over, keeping the table bounded under a spray of names', async () => {
    let now = Date.parse('2026-03-01T00:00:00Z');
    const t = new LoginThrottle(db.store, {}, () => now);
    for (let i = 0; i < 200; i++) await fail(t, `name-${i}`, `203.0.113.${i % 10}`);
    now += 16 * 60_000;
    assert.ok((await t.prune()) >= 210);
    const left = await db.store.write.selectFrom('login_throttle').select('throttle_key').where('throttle_key', 'like', 'a:name-%').execute();
    assert.equal(left.length, 0);
  });
});

describe('password hashing', () => {
  it("uses scrypt at OWASP's parameters (N=2^17, r=8, p=1) with a random salt, and verifies", async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    const [scheme, n, r, p, salt, key] = a.split('$');
    assert.deepEqual([scheme, n, r, p], ['scrypt', String(2 ** 17), '8', '1']);
    assert.equal(Buffer.from(salt!, 'base64').length, 16);
    assert.equal(Buffer.from(key!, 'base64').length, 32);
    assert.notEqual(a, b, 'salted');
    assert.equal(await verifyPassword('correct horse battery', a), true);
    assert.equal(await verifyPassword('correct horse batterz', a), false);
    assert.equal(await verifyPassword('x', 'not-a-hash'), false);
  });
});

describe('login throttle over HTTP', () => {
  let manager: ManagerProcess;
  let admin: Api;
  before(async () => {
    manager = await startManagerProcess({ args: ['--login-max-failures', '3', '--login-address-max-failures', '100'] });
    admin = await manager.admin();
    assert.equal((await admin.post('/api/v1/users', { username: 'dave', password: 'dave-password-1', role: 'viewer' })).status, 201);
  });
  after(async () => manager?.close());

  it('answers 429 with Retry-After once an account is locked, even for the right password', async () => {
    for (let i = 0; i < 3; i++) {
      expectError(await manager.api.post('/api/v1/auth/login', { username: 'dave', password: `wrong-${i}` }), 401, 'invalid_credentials');
    }
    const locked = await manager.api.post('/api/v1/auth/login', { username: 'dave', password: 'dave-password-1' });
    expectError(locked, 429, 'too_many_requests', 'try again');
    // 30 s from the first refused guess: a loaded machine may take a few of them to get here.
    const retryAfter = Number(locked.headers.get('retry-after'));
    assert.ok(retryAfter > 20 && retryAfter <= 30, `Retry-After: ${retryAfter}`);
    // Other accounts from the same address still log in.
    assert.ok(await manager.api.login('admin', ADMIN_PASSWORD));
  });

  it('refuses a password shorter than the policy with a clear 400', async () => {
    expectError(await admin.post('/api/v1/users', { username: 'erin', password: 'short-pass', role: 'viewer' }), 400, 'invalid_request', 'password', '12');
  });
});

/** Statuses of a burst: 50 wrong guesses and the right password, all sent at once. */
async function burst(apis: Api[], username: string, right: string): Promise<{ evaluated: number; statuses: number[]; rightStatus: number }> {
  const calls = Array.from({ length: 50 }, (_, i) => apis[i % apis.length]!.post('/api/v1/auth/login', { username, password: `wrong-guess-${i}` }));
  calls.push(apis[0]!.post('/api/v1/auth/login', { username, password: right }));
  const statuses = (await Promise.all(calls)).map((r) => r.status);
  for (const s of statuses) assert.ok([200, 401, 429].includes(s), `unexpected status ${s}`);
  // A 401 or a 200 means the password was hashed and compared; a 429 that it was not.
  return { evaluated: statuses.filter((s) => s !== 429).length, statuses, rightStatus: statuses.at(-1)! };
}

describe('login throttle under parallel guesses (issue #15 points 5 and 6)', () => {
  let manager: ManagerProcess;
  let admin: Api;
  before(async () => {
    manager = await startManagerProcess({ args: ['--login-max-failures', '3', '--login-address-max-failures', '1000'] });
    admin = await manager.admin();
    for (const username of ['frank', 'gina']) {
      assert.equal((await admin.post('/api/v1/users', { username, password: `${username}-password-1`, role: 'viewer' })).status, 201);
    }
  });
  after(async () => manager?.close());

  it('evaluates at most the limit of 50 parallel wrong guesses plus the right one, and refuses the right one while locked', async () => {
    const { evaluated, statuses, rightStatus } = await burst([manager.api], 'frank', 'frank-password-1');
    // Three wrong guesses are counted and checked (the third sets the lock), every other attempt
    // is refused unchecked, the right password included: it came after them, with the account
    // locked (had it been checked, it would have logged in and cleared the account's count).
    assert.equal(evaluated, 3, `evaluated ${evaluated} of 51 (limit 3): ${statuses.join(',')}`);
    assert.equal(rightStatus, 429, `the right password, sent after the guesses, is refused while the account is locked: ${statuses.join(',')}`);
    assert.deepEqual(statuses.slice(0, -1).filter((s) => s !== 429), [401, 401, 401], `the checked ones are wrong guesses: ${statuses.join(',')}`);
    expectError(await manager.api.post('/api/v1/auth/login', { username: 'frank', password: 'frank-password-1' }), 429, 'too_many_requests');
  });

  it('throttles the current password of a password change like a login', async () => {
    const gina = await manager.api.login('gina', 'gina-password-1');
    const me = (await gina.get('/api/v1/auth/me')).body.id as string;
    const tries = await Promise.all(Array.from({ length: 20 }, (_, i) => gina.patch(`/api/v1/users/${me}`, { currentPassword: `not-it-${i}`, password: 'gina-new-password-1' })));
    const statuses = tries.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 403).length <= 3, `checked ${statuses.filter((s) => s === 403).length}: ${statuses.join(',')}`);
    assert.ok(statuses.every((s) => s === 403 || s === 429), statuses.join(','));
    expectError(await gina.patch(`/api/v1/users/${me}`, { currentPassword: 'gina-password-1', password: 'gina-new-password-1' }), 429, 'too_many_requests');
  });
});

describe('login throttle across two managers sharing one PostgreSQL database (issue #14)', { skip: pgSkip() }, () => {
  let first: ManagerProcess;
  let second: ManagerProcess;
  before(async () => {
    const args = ['--login-max-failures', '3', '--login-address-max-failures', '1000'];
    first = await startManagerProcess({ args, database: 'postgres' });
    // Managers of one cluster share their signing keys (docs/scale-out.md), or the second refuses to join.
    second = await startManagerProcess({ args, database: { url: first.databaseUrl }, sharingKeysWith: first });
    const admin = await first.admin();
    assert.equal((await admin.post('/api/v1/users', { username: 'hank', password: 'hank-password-1', role: 'viewer' })).status, 201);
  });
  after(async () => {
    await second?.close();
    await first?.close();
  });

  it('gives the cluster as a whole one budget: at most the limit of guesses spread over both are evaluated', async () => {
    const { evaluated, statuses } = await burst([first.api, second.api], 'hank', 'hank-password-1');
    assert.ok(evaluated <= 3, `evaluated ${evaluated} of 51 over two managers (limit 3): ${statuses.join(',')}`);
    for (const m of [first, second]) {
      expectError(await m.api.post('/api/v1/auth/login', { username: 'hank', password: 'hank-password-1' }), 429, 'too_many_requests');
    }
  });
});
