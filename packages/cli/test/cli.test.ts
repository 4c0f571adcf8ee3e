/** The whole CLI, in-process, against the fake manager. */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { device, type FakeManager, startFakeManager, VALID_API_TOKEN, VALID_TOKEN } from './fake-manager.js';
import { run, tempDir } from './helpers.js';

const ID1 = '11111111-1111-4111-8111-111111111111';
const ID2 = '22222222-2222-4222-8222-222222222222';
const ID3 = '33333333-3333-4333-8333-333333333333';

let mgr: FakeManager;
let env: Record<string, string>;

before(async () => {
  mgr = await startFakeManager();
});
after(() => mgr.close());
beforeEach(async () => {
  env = { PALLAS_CONFIG_DIR: await tempDir(), PALLAS_SERVER: mgr.url };
  mgr.devices.splice(0, Infinity,
    device({ id: ID1, name: 'edge-lyon-01', tags: ['site=lyon'], vms: [{ id: 'vm-1', name: 'router', powerState: 'on', vcpus: 2, memoryMB: 2048, diskGB: 20 }] }),
    device({ id: ID2, name: 'edge-lyon-010', presence: 'offline', facts: null, lastSeenAt: null }),
    device({ id: ID3, name: 'twin' }),
    device({ id: '44444444-4444-4444-8444-444444444444', name: 'twin' }),
  );
  mgr.log.length = 0;
});

async function login(): Promise<void> {
  const r = await run(['login', '-u', 'admin'], { env, stdin: 'secret-pw\n' });
  assert.equal(r.code, 0, r.stderr);
}

test('login reads the password from stdin and saves a private session', async () => {
  const r = await run(['login', '-u', 'admin'], { env, stdin: 'secret-pw\nignored\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Logged in to ${mgr.url} as admin \\(admin\\)`));
  const path = join(env.PALLAS_CONFIG_DIR!, 'config.json');
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
    server: mgr.url,
    token: VALID_TOKEN,
    username: 'admin',
    expiresAt: '2030-01-01T00:00:00.000Z',
  });
  // The saved server is used without PALLAS_SERVER.
  const who = await run(['whoami'], { env: { PALLAS_CONFIG_DIR: env.PALLAS_CONFIG_DIR } });
  assert.equal(who.stdout, `admin (admin) on ${mgr.url}\n`);
});

test('whoami says when the credential is an API token', async () => {
  const who = await run(['whoami'], { env: { ...env, PALLAS_TOKEN: VALID_API_TOKEN } });
  assert.equal(who.code, 0, who.stderr);
  assert.equal(who.stdout, `admin (admin) on ${mgr.url}, with an API token (PALLAS_TOKEN), not a login session\n`);
  const json = await run(['whoami', '--json'], { env: { ...env, PALLAS_TOKEN: VALID_API_TOKEN } });
  assert.equal((JSON.parse(json.stdout) as { auth: string }).auth, 'api-token');
});

test('with --json, errors are JSON on stderr with the API code; a missing file is said in words', async () => {
  const r = await run(['devices', 'show', 'nope', '--json'], { env: { ...env, PALLAS_TOKEN: VALID_API_TOKEN } });
  assert.equal(r.code, 1);
  const err = JSON.parse(r.stderr) as { error: { code: string; message: string } };
  assert.equal(typeof err.error.message, 'string');
  assert.equal(r.stdout, '');
  const expired = await run(['devices', 'ls', '--json'], { env: { ...env, PALLAS_TOKEN: 'stale' } });
  assert.deepEqual(JSON.parse(expired.stderr), { error: { code: 'unauthorized', message: 'not logged in or session expired: run `pallas login`' } });
  const usage = await run(['devices', 'ls', '--presence', 'maybe', '--json'], { env });
  assert.equal(usage.code, 2);
  assert.equal((JSON.parse(usage.stderr) as { error: { code: string } }).error.code, 'usage');
  const missing = await run(['artifacts', 'upload', '/no/such/file.ova', '--kind', 'ova', '--name', 'x', '--version', '1'], { env: { ...env, PALLAS_TOKEN: VALID_API_TOKEN } });
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'pallas: no such file: /no/such/file.ova\n');
});

test('login: flag and PALLAS_PASSWORD; wrong password shows the server message', async () => {
  assert.equal((await run(['login', '-u', 'admin', '-p', 'secret-pw'], { env })).code, 0);
  assert.equal((await run(['login', '--username', 'admin'], { env: { ...env, PALLAS_PASSWORD: 'secret-pw' } })).code, 0);
  const bad = await run(['login', '-u', 'admin', '-p', 'nope'], { env });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'pallas: login failed: invalid username or password\n');
  const empty = await run(['login', '-u', 'admin'], { env });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /^pallas: no password given/);
});

test('without a session: clear message before any request; expired session: the 401 message', async () => {
  const r = await run(['devices', 'ls'], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `pallas: not logged in to ${mgr.url}: run \`pallas login\`\n`);
  assert.equal(mgr.log.length, 0);
  const expired = await run(['devices', 'ls'], { env: { ...env, PALLAS_TOKEN: 'stale' } });
  assert.equal(expired.code, 1);
  assert.equal(expired.stderr, 'pallas: not logged in or session expired: run `pallas login`\n');
});

test('devices ls: table, footer, filters and --json', async () => {
  await login();
  const r = await run(['devices', 'ls'], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID +NAME +PRESENCE +HYPERVISOR +VMS +AGENT +LAST SEEN +TAGS$/);
  assert.match(lines[1]!, new RegExp(`^${ID1} +edge-lyon-01 +online +sim 1.0 +1 +0.1.0 +12s ago +site=lyon$`));
  assert.match(lines[2]!, new RegExp(`^${ID2} +edge-lyon-010 +offline +- +0 +- +never +-$`));
  assert.equal(lines.at(-1), '4 of 4 devices');

  const f = await run(['devices', 'ls', '--presence', 'offline', '--tag', 'x', '--name', 'lyon', '--limit', '2', '--offset', '1'], { env });
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(mgr.lastCall(), { route: 'listDevices', params: {}, query: 'presence=offline&name=lyon&tag=x&limit=2&offset=1' });

  const j = await run(['devices', 'ls', '--limit', '3', '--json'], { env });
  const page = JSON.parse(j.stdout) as { items: unknown[]; total: number };
  assert.equal(page.items.length, 3);
  assert.equal(page.total, 4);

  const more = await run(['devices', 'ls', '--limit', '3'], { env });
  assert.match(more.stdout, /\n3 of 4 devices \(more: --offset 3, or --all\)\n$/);

  const all = await run(['--json', 'devices', 'ls', '--all', '--limit', '3'], { env });
  assert.equal((JSON.parse(all.stdout) as { items: unknown[] }).items.length, 4);
});

test('devices show by exact name or ID; ambiguous and unknown names are errors', async () => {
  await login();
  const r = await run(['devices', 'show', 'edge-lyon-01'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^ID: +${ID1}$`, 'm'));
  assert.match(r.stdout, /^Hostname: +edge-lyon-01\.local$/m);
  assert.match(r.stdout, /^Hypervisor: +sim 1\.0 \(build test\)$/m);
  assert.match(r.stdout, /^Memory: +1 GiB used of 8 GiB$/m);
  assert.match(r.stdout, /^Agent: +0\.1\.0 \(up 1m 40s\)$/m);
  assert.match(r.stdout, /^ {2}vm-1 +router +on +2 +2 GiB +20 GB +-$/m);

  assert.match(r.stdout, /^Presence, 24 h: +offline 2 times in 24 h, longest 41 min \(51 min in all\); online 96\.5 % of the time$/m);
  assert.match(r.stdout, /^CPU, 24 h: +avg 30 %, peak 45 %$/m);

  const byId = await run(['devices', 'show', ID2, '--json'], { env });
  const shown = JSON.parse(byId.stdout) as { name: string; presenceHistory: { summary: Array<{ state: string; times: number }> } };
  assert.equal(shown.name, 'edge-lyon-010');
  assert.deepEqual(shown.presenceHistory.summary.map((s) => [s.state, s.times]), [['offline', 2], ['online', 2]]);

  const twin = await run(['devices', 'show', 'twin'], { env });
  assert.equal(twin.code, 1);
  assert.match(twin.stderr, /^pallas: 2 devices are named 'twin': use an ID \(33333333-.*, 44444444-.*\)\n$/);

  const none = await run(['devices', 'show', 'edge-lyon'], { env });
  assert.equal(none.code, 1);
  assert.equal(none.stderr, "pallas: no device with ID or name 'edge-lyon' (similar: 'edge-lyon-01', 'edge-lyon-010')\n");
});

test('devices show marks what an unresponsive or offline device reported as of its last report', async () => {
  await login();
  const last = new Date(Date.now() - 600_000).toISOString();
  // The time alone on the same UTC day, with the date when the report was on an earlier day.
  const sameDay = last.slice(0, 10) === new Date().toISOString().slice(0, 10);
  const hhmm = `${sameDay ? '' : `${last.slice(0, 10)} `}${last.slice(11, 16)} UTC`;
  mgr.devices[0] = { ...mgr.devices[0]!, presence: 'unresponsive', lastSeenAt: last };
  const r = await run(['devices', 'show', 'edge-lyon-01'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Presence: +unresponsive \\(last seen 10m ago, at ${last.slice(0, 10)} ${last.slice(11, 19)}Z\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^Memory: +1 GiB used of 8 GiB \\(as of ${hhmm}\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^Virtual machines \\(1, as of ${hhmm}\\):$`, 'm'));
  // Online: the values are live and say nothing more.
  mgr.devices[0] = { ...mgr.devices[0]!, presence: 'online' };
  const live = await run(['devices', 'show', 'edge-lyon-01'], { env });
  assert.doesNotMatch(live.stdout, /as of/);

  const filtered = await run(['devices', 'ls', '--presence', 'unresponsive'], { env });
  assert.equal(filtered.code, 0, filtered.stderr);
  assert.equal(mgr.lastCall()?.query, 'presence=unresponsive');
});

test('devices rename and tag (replace, --add, --remove, --clear)', async () => {
  await login();
  const r = await run(['devices', 'rename', 'edge-lyon-01', 'edge-lyon-02'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Renamed device 'edge-lyon-01' to 'edge-lyon-02' (${ID1}).\n`);
  assert.deepEqual(mgr.log.at(-1)?.body, { name: 'edge-lyon-02' });

  const tag = (args: string[]) => run(['devices', 'tag', ID1, ...args], { env });
  assert.equal((await tag(['a', 'b', 'a'])).stdout, "Device 'edge-lyon-02' tags: a, b\n");
  assert.equal((await tag(['c', '--add'])).stdout, "Device 'edge-lyon-02' tags: a, b, c\n");
  assert.equal((await tag(['--remove', 'a'])).stdout, "Device 'edge-lyon-02' tags: b, c\n");
  assert.equal((await tag(['--clear'])).stdout, "Device 'edge-lyon-02' tags: (none)\n");
  const bad = await tag([]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /give at least one tag/);
});

test('devices rm refuses without --yes when not on a terminal', async () => {
  await login();
  const r = await run(['devices', 'rm', 'edge-lyon-01'], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `pallas: refusing to decommission device 'edge-lyon-01' (${ID1}) without confirmation: pass --yes\n`);
  assert.equal(mgr.devices.length, 4);
  const ok = await run(['devices', 'rm', 'edge-lyon-01', '--yes', '--json'], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { id: ID1, name: 'edge-lyon-01', decommissioned: true });
  assert.equal(mgr.devices.length, 3);
});

test('users: add (password from stdin), ls, role, passwd, rm by username', async () => {
  await login();
  const add = await run(['users', 'add', 'bob', '--role', 'operator'], { env, stdin: 'bob-password\n' });
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(mgr.log.at(-1)?.body, { username: 'bob', password: 'bob-password', role: 'operator' });
  const ls = await run(['users', 'ls'], { env });
  assert.match(ls.stdout, /^u2 +bob +operator +\d{4}-/m);
  assert.match(ls.stdout, /\n2 users\n$/);
  assert.equal((await run(['users', 'role', 'bob', 'viewer'], { env })).stdout, 'bob is now viewer.\n');
  assert.equal((await run(['users', 'role', 'bob', 'king'], { env })).code, 2);
  assert.equal((await run(['users', 'passwd', 'u2', '--password', 'new-password'], { env })).stdout, 'Password changed for bob.\n');
  assert.deepEqual(mgr.log.at(-1)?.body, { password: 'new-password' });
  assert.equal((await run(['users', 'rm', 'bob'], { env })).stdout, 'Deleted user bob.\n');
  const gone = await run(['users', 'rm', 'bob'], { env });
  assert.equal(gone.stderr, "pallas: no user with ID or username 'bob'\n");
  assert.equal((await run(['users', 'add', 'carol'], { env })).code, 2, '--role is required');
});

test('tokens create prints the secret and the agent command; ls and revoke', async () => {
  await login();
  const r = await run(['tokens', 'create', '--name', 'lyon', '--ttl', '30m', '--max-uses', '5'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(mgr.log.at(-1)?.body, { name: 'lyon', ttlSec: 1800, maxUses: 5 });
  assert.match(r.stdout, /^ {2}enr-secret-xyz$/m);
  assert.ok(r.stdout.includes(`  npx pallas-agent --manager ${mgr.url} --token enr-secret-xyz --state-dir /var/lib/pallas-agent\n`));
  assert.match(r.stderr, /loopback/);

  const j = await run(['tokens', 'create', '--json'], { env });
  const created = JSON.parse(j.stdout) as { token: string; agentCommand: string };
  assert.equal(created.token, 'enr-secret-xyz');
  assert.equal(created.agentCommand, `npx pallas-agent --manager ${mgr.url} --token enr-secret-xyz --state-dir /var/lib/pallas-agent`);
  assert.equal(j.stderr, '', 'no notes in --json mode');

  assert.equal((await run(['tokens', 'revoke', 't1'], { env })).stdout, 'Revoked enrollment token t1.\n');
  const ls = await run(['tokens', 'ls'], { env });
  assert.match(ls.stdout, /^ID +NAME +USES +EXPIRES +STATUS +CREATED BY$/m);
  assert.match(ls.stdout, /^t1 +lyon +0\/5 +in \d+m +revoked +admin$/m);
  assert.match(ls.stdout, /^t2 +- +0\/1 +in (23h|1d) +active +admin$/m);
  assert.equal((await run(['tokens', 'create', '--ttl', 'soon'], { env })).code, 2);
});

test('logout revokes the session and forgets the token', async () => {
  await login();
  const r = await run(['logout'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(mgr.lastCall(), { route: 'logout', params: {}, query: '' });
  const saved = JSON.parse(await readFile(join(env.PALLAS_CONFIG_DIR!, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(saved, { server: mgr.url, username: 'admin' });
  assert.equal((await run(['whoami'], { env })).code, 1);
  assert.equal((await run(['logout'], { env })).stdout, `Not logged in to ${mgr.url}.\n`);
});

test('a saved token is not sent to another server given with --server', async () => {
  await login();
  const other = await startFakeManager();
  try {
    const r = await run(['whoami', '--server', other.url], { env });
    assert.equal(r.code, 1);
    assert.equal(other.log.length, 0);
  } finally {
    await other.close();
  }
});

test('usage errors exit 2 with one "pallas:" line; help exits 0', async () => {
  const unknown = await run(['devicez'], { env });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^pallas: unknown command 'devicez'[^\n]*\n$/);
  assert.equal((await run(['devices', 'ls', '--limit', '0'], { env })).code, 2);
  const help = await run(['devices', 'ls', '--help'], { env });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--presence <state>/);
  assert.match(help.stdout, /--json/);
});

test('an unreachable server is named in the error', async () => {
  const gone = await startFakeManager();
  await gone.close();
  const r = await run(['login', '-u', 'a', '-p', 'b', '--server', gone.url], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `pallas: could not reach the Pallas manager at ${gone.url} (ECONNREFUSED)\n`);
});

test('fleet prints the counts now and the trends of the last 24 hours, or JSON', async () => {
  await login();
  const r = await run(['fleet'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Devices: +3 total: 2 online, 1 not online$/m);
  assert.match(r.stdout, /^Online, 24 h: +▁{12}█{12} +\(1–2; \+1 since 24 h ago\)$/m);
  assert.match(r.stdout, /^Tasks, 24 h: +4 succeeded, 3 failed, 0 timed out, 0 cancelled$/m);
  assert.match(r.stdout, /^Enrolled, 24 h: +1$/m);
  assert.match(r.stdout, /^ {2}failed +vm\.deploy +download_failed +2$/m);
  const json = JSON.parse((await run(['fleet', '--json'], { env })).stdout) as { summary: { devices: { total: number } }; history: { step: number } };
  assert.equal(json.summary.devices.total, 3);
  assert.equal(json.history.step, 3600);
});
