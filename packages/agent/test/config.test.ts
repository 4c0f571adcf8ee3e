import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig, isConfigError, type AgentConfig } from '../src/config/config.js';

const dir = await mkdtemp(join(tmpdir(), 'pallas-config-'));
after(() => rm(dir, { recursive: true, force: true }));
const file = join(dir, 'agent.json');
await writeFile(
  file,
  JSON.stringify({ manager: 'https://file.example', token: 'file-token', stateDir: 'state', driver: 'sim', logLevel: 'debug', sim: { seed: 9, vmCount: 5 } }),
);

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentConfig> {
  const inv = await loadConfig(argv, env, '/work-cwd');
  assert.equal(inv.action, 'run');
  return (inv as { config: AgentConfig }).config;
}

describe('agent configuration', () => {
  it('has defaults', async () => {
    const c = await run([]);
    assert.deepEqual(c, { manager: undefined, token: undefined, reEnroll: false, stateDir: '/work-cwd/pallas-agent-state', driver: 'sim', logLevel: 'info', sim: {}, qemu: { dir: '/work-cwd/pallas-agent-state/qemu' }, esxi: undefined, secretKey: { kind: 'file', path: '/work-cwd/pallas-agent-state/secret.key' }, downloads: {} });
  });

  it('takes the download bandwidth cap from the flag, PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC or the file, and refuses nonsense', async () => {
    const capFile = join(dir, 'cap.json');
    await writeFile(capFile, JSON.stringify({ downloads: { maxBytesPerSec: 1_000_000 } }));
    assert.deepEqual((await run(['--config', capFile])).downloads, { maxBytesPerSec: 1_000_000 });
    assert.deepEqual((await run(['--config', capFile], { PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC: '2000000' })).downloads, { maxBytesPerSec: 2_000_000 });
    assert.deepEqual((await run(['--config', capFile, '--download-max-bytes-per-sec', '3000000'], { PALLAS_DOWNLOAD_MAX_BYTES_PER_SEC: '2000000' })).downloads, { maxBytesPerSec: 3_000_000 });
    await assert.rejects(run(['--download-max-bytes-per-sec', '4MB']), /at least 1024, got "4MB"/);
    await assert.rejects(run(['--download-max-bytes-per-sec', '10']), /at least 1024/);
  });

  it('takes the progress interval from the file only, and refuses nonsense', async () => {
    const every = join(dir, 'progress.json');
    await writeFile(every, JSON.stringify({ progressIntervalMs: 250 }));
    assert.equal((await run(['--config', every])).progressIntervalMs, 250);
    assert.equal((await run([])).progressIntervalMs, undefined, 'absent: the task runner\'s default');
    await writeFile(every, JSON.stringify({ progressIntervalMs: -1 }));
    await assert.rejects(run(['--config', every]), /progressIntervalMs/);
  });

  it('reads the config file; relative paths are from its directory', async () => {
    const c = await run(['--config', file]);
    assert.equal(c.manager, 'https://file.example');
    assert.equal(c.token, 'file-token');
    assert.equal(c.stateDir, join(dir, 'state'));
    assert.equal(c.logLevel, 'debug');
    assert.deepEqual(c.sim, { seed: 9, vmCount: 5 });
  });

  it('environment overrides the file, flags override both', async () => {
    const env = { PALLAS_CONFIG: file, PALLAS_MANAGER: 'http://env.example', PALLAS_TOKEN: 'env-token', PALLAS_STATE_DIR: 'env-state', PALLAS_LOG_LEVEL: 'warn' };
    const c = await run([], env);
    assert.deepEqual([c.manager, c.token, c.stateDir, c.logLevel], ['http://env.example', 'env-token', '/work-cwd/env-state', 'warn']);
    const f = await run(['--manager', 'http://flag.example', '--token', 'flag-token', '--state-dir', '/abs', '--log-level', 'error'], env);
    assert.deepEqual([f.manager, f.token, f.stateDir, f.logLevel], ['http://flag.example', 'flag-token', '/abs', 'error']);
    assert.deepEqual(f.sim, { seed: 9, vmCount: 5 }, 'driver options still come from the file');
  });

  it('takes reEnroll from the --re-enroll flag only, never from the environment or the file', async () => {
    assert.equal((await run(['--re-enroll'])).reEnroll, true);
    assert.equal((await run([], { PALLAS_RE_ENROLL: '1' })).reEnroll, false);
    const withKey = join(dir, 're-enroll.json');
    await writeFile(withKey, JSON.stringify({ token: 'file-token', reEnroll: true }));
    await assert.rejects(run(['--config', withKey]), /reEnroll/);
  });

  it('treats empty environment variables as unset', async () => {
    const c = await run(['--config', file], { PALLAS_MANAGER: '' });
    assert.equal(c.manager, 'https://file.example');
  });

  it('answers --help and --version', async () => {
    assert.deepEqual(await loadConfig(['--help'], {}), { action: 'help' });
    assert.deepEqual(await loadConfig(['--version'], {}), { action: 'version' });
  });

  const bad: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['unknown flag', ['--nope'], {}, /nope/],
    ['positional', ['extra'], {}, /extra|positional/i],
    ['missing file', ['--config', join(dir, 'missing.json')], {}, /cannot read config file/],
    ['bad url', ['--manager', 'ftp://x'], {}, /http/],
    ['bad level', ['--log-level', 'loud'], {}, /log level/],
    ['unknown driver', [], { PALLAS_DRIVER: 'vbox' }, /valid drivers: sim, qemu, esxi/],
    ['esxi driver without its host', ['--driver', 'esxi'], {}, /esxi\.url is required/],
  ];
  for (const [name, argv, env, message] of bad) {
    it(`rejects ${name} as a config error`, async () => {
      await assert.rejects(loadConfig(argv, env), (err) => isConfigError(err) && message.test((err as Error).message));
    });
  }

  it('rejects a config file with unknown keys or bad JSON, naming the problem', async () => {
    const unknown = join(dir, 'unknown.json');
    await writeFile(unknown, JSON.stringify({ manger: 'x' }));
    await assert.rejects(loadConfig(['--config', unknown], {}), /manger: unknown setting/);
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{');
    await assert.rejects(loadConfig(['--config', broken], {}), /not valid UTF-8 JSON/);
    const badSim = join(dir, 'bad-sim.json');
    await writeFile(badSim, JSON.stringify({ sim: { vmCount: -1 } }));
    await assert.rejects(loadConfig(['--config', badSim], {}), /sim\.vmCount/);
  });

  it('takes the sim driver latency and failure injection options, and checks them', async () => {
    const good = join(dir, 'sim-ops.json');
    const sim = { seed: 3, latencyMs: { createVm: 500, powerVm: 0 }, failRate: 0.25, failOn: { deleteVm: 'host_error' } };
    await writeFile(good, JSON.stringify({ sim }));
    const res = await loadConfig(['--config', good], {});
    assert.equal(res.action, 'run');
    assert.deepEqual((res as { config: AgentConfig }).config.sim, sim);
    for (const [bad, path] of [
      [{ failRate: 1.5 }, /sim\.failRate/],
      [{ failOn: { createVm: 'oops' } }, /sim\.failOn\.createVm/],
      [{ failOn: { bootVm: 'host_error' } }, /sim\.failOn\.bootVm: unknown setting/],
      [{ latencyMs: -1 }, /sim\.latencyMs/],
    ] as const) {
      const f = join(dir, 'bad-sim-ops.json');
      await writeFile(f, JSON.stringify({ sim: bad }));
      await assert.rejects(loadConfig(['--config', f], {}), path);
    }
  });

  it('takes the qemu driver folder from --qemu-dir, PALLAS_QEMU_DIR, the file or <stateDir>/qemu', async () => {
    const f = join(dir, 'qemu.json');
    await writeFile(f, JSON.stringify({ driver: 'qemu', qemu: { dir: 'vms', accel: 'tcg', shutdownTimeoutMs: 30_000 } }));
    const fromFile = await run(['--config', f]);
    assert.equal(fromFile.driver, 'qemu');
    assert.deepEqual(fromFile.qemu, { dir: join(dir, 'vms'), accel: 'tcg', shutdownTimeoutMs: 30_000 });
    assert.equal((await run(['--config', f], { PALLAS_QEMU_DIR: 'env-vms' })).qemu.dir, '/work-cwd/env-vms');
    assert.equal((await run(['--config', f, '--qemu-dir', '/srv/vms'], { PALLAS_QEMU_DIR: 'env-vms' })).qemu.dir, '/srv/vms');
    assert.equal((await run(['--driver', 'qemu', '--state-dir', '/var/lib/pallas'])).qemu.dir, '/var/lib/pallas/qemu');
    const badQemu = join(dir, 'bad-qemu.json');
    await writeFile(badQemu, JSON.stringify({ qemu: { accel: 'hvf' } }));
    await assert.rejects(loadConfig(['--config', badQemu], {}), /qemu\.accel/);
  });
});
