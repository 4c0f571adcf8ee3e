/**
 * A real agent on a manager that runs on an external broker (Debian's Mosquitto 2, its own
 * instance, over TLS with a CA of its own that the manager hands to agents): enrollment gives it the broker's URL and a dynamic-security client, a task runs,
 * a credential rotation moves it to its second broker username, and when its broker client is
 * deleted behind the manager's back the agent asks the manager (POST /enroll/status), which
 * makes the client again from the secret the agent proves, and the agent carries on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, mosquittoMissingReason, skipUnless, startAgentProcess, startManagerProcess, startMosquitto, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc, type RunningMosquitto,
} from '@pallas/testkit';

const skip = skipUnless(mosquittoMissingReason());

describe('an agent on a manager with an external broker', { skip }, () => {
  let broker: RunningMosquitto;
  let manager: ManagerProcess;
  let admin: Api;
  let agent: Proc;
  let id: string;
  const dir = tempDir('pallas-e2e-extbroker-');
  const stateDir = join(dir.path, 'agent');

  const ctrl = (...args: string[]) => new Promise<string>((resolve, reject) => {
    execFile('mosquitto_ctrl', ['-h', '127.0.0.1', '-p', String(broker.port), '-u', broker.admin.username, '-P', broker.admin.password, 'dynsec', ...args],
      { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const brokerClients = async () => (await ctrl('listClients')).split('\n').map((l) => l.trim());
  const presence = async () => (await admin.get<{ presence: string }>(`/api/v1/devices/${id}`)).body.presence;
  const credential = () => JSON.parse(readFileSync(join(stateDir, 'credential.json'), 'utf8')) as { mqtt: { url: string; username: string; password: string } };
  const runTask = async (name: string): Promise<Task> => {
    const res = await admin.post<Task>(`/api/v1/devices/${id}/vms`, { name, vcpus: 1, memoryMB: 256, diskGB: 1 });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitFor(`task ${name}`, async () => {
      const t = (await admin.get<Task>(`/api/v1/tasks/${res.body.id}`)).body;
      return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(t.state) && t;
    }, { timeoutMs: 30_000 });
  };
  const simVms = () => (JSON.parse(readFileSync(join(stateDir, 'sim-host.json'), 'utf8')) as { vms: Vm[] }).vms.map((v) => v.name);

  before(async () => {
    broker = await startMosquitto({ tls: true });
    manager = await startManagerProcess({ args: ['--broker-url', broker.tls!.managerUrl, '--broker-ca', broker.tls!.caFile, '--keepalive-sec', '5'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 2 });
    const config = join(dir.path, 'agent.json');
    writeFileSync(config, JSON.stringify({ sim: { latencyMs: 10 } }));
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config] });
    id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json'))
      && (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId);
    await waitFor('device online', async () => (await presence()) === 'online', { timeoutMs: 30_000 });
  });
  after(async () => {
    await agent?.kill();
    await manager?.close();
    await broker?.cleanup();
    dir.cleanup();
  });

  it('enrolls with the broker\'s URL and runs a task', async () => {
    assert.equal(credential().mqtt.url, broker.tls!.url);
    assert.ok((await brokerClients()).includes(id));
    const t = await runTask('web-1');
    assert.equal(t.state, 'succeeded', JSON.stringify(t.error));
    assert.ok(simVms().includes('web-1'), 'the VM exists on the device\'s own host');
  });

  it('moves to its second broker username on rotation; the first is deleted once it is seen', async () => {
    const before = credential().mqtt;
    assert.equal((await admin.post(`/api/v1/devices/${id}/rotate-credential`, {})).status, 200);
    await waitFor('the agent stored its rotated login', () => credential().mqtt.username === `${id}.b` && credential().mqtt.password !== before.password, { timeoutMs: 20_000 });
    await waitFor('the first username deleted on the broker', async () => {
      const clients = await brokerClients();
      return clients.includes(`${id}.b`) && !clients.includes(id);
    }, { timeoutMs: 20_000 });
    await waitFor('online again', async () => (await presence()) === 'online', { timeoutMs: 20_000 });
    assert.equal((await runTask('web-2')).state, 'succeeded');
  });

  it('recovers when its broker client is deleted: the manager re-makes it from the proven secret', async () => {
    const username = credential().mqtt.username;
    await ctrl('deleteClient', username); // the broker also drops the live connection
    await waitFor('the agent asked the manager', () => /asking the manager whether it is still valid/.test(agent.output()), { timeoutMs: 30_000 });
    await waitFor('the client made again', async () => (await brokerClients()).includes(username), { timeoutMs: 30_000 });
    await waitFor('online again', async () => (await presence()) === 'online', { timeoutMs: 30_000 });
    assert.equal(existsSync(join(stateDir, 'retired.json')), false, 'the agent did not give its credential up');
    const t = await runTask('web-3');
    assert.equal(t.state, 'succeeded', JSON.stringify(t.error));
    assert.ok(simVms().includes('web-3'));
  });
});
