/**
 * The worked examples of docs/client.md (packages/client/examples), run as operators run them
 * (`node script.mjs`, an API token in PALLAS_TOKEN) against a real manager with real agents,
 * so that the documentation cannot rot.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { PallasClient } from '@pallas/client';
import { startAgentProcess, startManagerProcess, tempDir, waitFor, type ManagerProcess, type Proc } from '@pallas/testkit';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');
const run = promisify(execFile);

let manager: ManagerProcess;
let admin: PallasClient;
const agents: Proc[] = [];
const dirs = tempDir('pallas-client-examples-');
const env: Record<string, string> = {};

async function startDevice(name: string, token: string): Promise<{ id: string; proc: Proc }> {
  const stateDir = join(dirs.path, name);
  const proc = startAgentProcess({ managerUrl: manager.httpUrl, token, stateDir });
  agents.push(proc);
  const id = await waitFor(`${name} enrolled`, () => existsSync(join(stateDir, 'device.json'))
    && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
  await waitFor(`${name} online`, async () => (await admin.call('getDevice', { params: { id } })).presence === 'online');
  await admin.call('updateDevice', { params: { id }, body: { name, tags: ['site=lyon'] } });
  return { id, proc };
}

async function example(script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(EXAMPLES, script), ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  manager = await startManagerProcess({ args: ['--status-interval-sec', '2'] });
  admin = await manager.client();
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: 3 } });
  const pat = await admin.call('createApiToken', { body: { name: 'examples', role: 'operator' } });
  Object.assign(env, { PALLAS_SERVER: manager.httpUrl, PALLAS_TOKEN: pat.token });

  const gone = await startDevice('lyon-gone', token);
  await startDevice('lyon-up', token);
  await gone.proc.kill();
  await waitFor('lyon-gone offline', async () => (await admin.call('getDevice', { params: { id: gone.id } })).presence === 'offline');
});

after(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await manager?.close();
  dirs.cleanup();
});

describe('docs/client.md examples', () => {
  it('offline-devices.mjs lists the offline devices of a tag', async () => {
    const r = await example('offline-devices.mjs', 'site=lyon');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lyon-gone {2}last seen 20/);
    assert.doesNotMatch(r.stdout, /lyon-up/);
    assert.match(r.stdout, /^1 offline device\(s\) tagged site=lyon$/m);
  });

  it("power-off-vms.mjs powers off every VM named test-* and waits for the tasks", async () => {
    const [up] = (await admin.all('listDevices', { query: { presence: 'online' } }));
    const created = [];
    for (const name of ['test-1', 'test-2', 'prod-1']) created.push(await admin.call('createVm', { params: { id: up!.id }, body: { name, vcpus: 1, memoryMB: 64, diskGB: 1 } }));
    const vms = await admin.waitForTasks(created.map((t) => t.id));
    const on = await Promise.all(vms.map((t) => admin.call('powerVm', { params: { id: up!.id, vmId: t.vmId! }, body: { action: 'on' } })));
    await admin.waitForTasks(on.map((t) => t.id));
    const ours = ['test-1', 'test-2', 'prod-1'];
    await waitFor('the inventory shows them on', async () =>
      (await admin.call('listVms', { params: { id: up!.id } })).filter((v) => ours.includes(v.name) && v.powerState === 'on').length === 3);

    const r = await example('power-off-vms.mjs', 'test-*');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^waiting for 2 task\(s\)$/m);
    assert.match(r.stdout, /^2 powered off, 0 not$/m);
    await waitFor('test-* off, prod-1 still on', async () => {
      const now = (await admin.call('listVms', { params: { id: up!.id } })).filter((v) => ours.includes(v.name));
      return now.length === 3 && now.every((v) => v.powerState === (v.name.startsWith('test-') ? 'off' : 'on'));
    });
  });
});
