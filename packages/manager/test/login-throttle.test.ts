/**
 * Login throttling: the policy on a fake clock, then over HTTP (429 with Retry-After, per
 * account and per address, a success resets the account) and the password policy's 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, Api, startManagerProcess, type ManagerProcess } from '@pallas/testkit';
import { AppError } from '../src/errors.js';
import { LoginThrottle } from '../src/services/auth/login-throttle.js';
import { hashPassword, verifyPassword } from '../src/security/passwords.js';
import { expectError } from './support.js';

function lockedFor(throttle: LoginThrottle, user: string, ip: string): number {
  try {
    throttle.check(user, ip);
    return 0;
  } catch (err) {
    assert.ok(err instanceof AppError && err.code === 'too_many_requests');
    return Number(err.headers!['retry-after']);
  }
}

describe('login throttle policy', () => {
  it('locks an account after 5 failures, doubling the lock per further failure up to 15 min', () => {
    let now = 0;
    const t = new LoginThrottle({}, () => now);
    for (let i = 0; i < 4; i++) t.failed('alice', `10.0.0.${i}`);
    assert.equal(lockedFor(t, 'alice', '10.0.1.1'), 0);
    t.failed('ALICE', '10.0.0.9'); // names are compared case-insensitively
    assert.equal(lockedFor(t, 'alice', '10.0.1.1'), 30);
    now += 30_000;
    assert.equal(lockedFor(t, 'alice', '10.0.1.1'), 0);
    t.failed('alice', '10.0.0.10');
    assert.equal(lockedFor(t, 'alice', '10.0.1.1'), 60);
    for (let i = 0; i < 10; i++) t.failed('alice', '10.0.0.11');
    assert.equal(lockedFor(t, 'alice', '10.0.1.1'), 900);
    assert.equal(lockedFor(t, 'bob', '10.0.1.1'), 0, 'other accounts are not affected');
  });

  it('forgets failures after the window, and a success clears the account', () => {
    let now = 0;
    const t = new LoginThrottle({}, () => now);
    for (let i = 0; i < 4; i++) t.failed('carol', '10.0.0.1');
    now += 16 * 60_000;
    t.failed('carol', '10.0.0.1');
    assert.equal(lockedFor(t, 'carol', '10.0.0.2'), 0, 'old failures no longer count');
    for (let i = 0; i < 3; i++) t.failed('carol', '10.0.0.1');
    t.succeeded('carol');
    t.failed('carol', '10.0.0.1');
    assert.equal(lockedFor(t, 'carol', '10.0.0.2'), 0);
  });

  it('locks an address that sprays many accounts, and a success elsewhere does not reset it', () => {
    const t = new LoginThrottle({ maxAddressFailures: 20 });
    for (let i = 0; i < 20; i++) t.failed(`user${i}`, '192.0.2.7');
    t.succeeded('attackers-own-account');
    assert.equal(lockedFor(t, 'fresh-name', '192.0.2.7'), 30);
    assert.equal(lockedFor(t, 'fresh-name', '192.0.2.8'), 0);
  });

  it('keeps memory bounded under a spray of names', () => {
    const t = new LoginThrottle();
    for (let i = 0; i < 120_000; i++) t.failed(`name-${i}`, `ip-${i % 1000}`);
    assert.ok(t.size.accounts <= 50_000, `accounts: ${t.size.accounts}`);
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
    assert.equal(locked.headers.get('retry-after'), '30');
    // Other accounts from the same address still log in.
    assert.ok(await manager.api.login('admin', ADMIN_PASSWORD));
  });

  it('refuses a password shorter than the policy with a clear 400', async () => {
    expectError(await admin.post('/api/v1/users', { username: 'erin', password: 'short-pass', role: 'viewer' }), 400, 'invalid_request', 'password', '12');
  });
});
