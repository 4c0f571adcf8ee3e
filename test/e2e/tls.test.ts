/**
 * Issue 6, acceptance 5: the agent trusts only the CA it pinned. A real manager with its own
 * CA; real agents that enroll over HTTPS with `--ca` and connect over MQTT-over-TLS with the
 * CA from the enrollment response; and agents pinned to another CA, which never get through.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Device } from '@pallas/protocol';
import {
  Api, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { loadTls } from '../../packages/manager/src/security/tls.js';

let manager: ManagerProcess;
let admin: Api;
let token: string;
const dirs: Array<{ path: string; cleanup(): void }> = [];
const agents: Proc[] = [];
let otherCaFile: string;

function dir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d.path;
}

async function devices(): Promise<Device[]> {
  return (await admin.get<{ items: Device[] }>('/api/v1/devices?limit=500')).body.items;
}

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
  token = await createEnrollmentToken(admin, { maxUses: 10 });
  // Another CA, made the way a manager makes its own: what an impostor would present.
  const other = await loadTls({ dataDir: dir('pallas-other-ca-') });
  otherCaFile = join(dir('pallas-other-ca-file-'), 'ca.crt');
  writeFileSync(otherCaFile, other.ca!);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await manager?.close();
  for (const d of dirs) d.cleanup();
});

describe('TLS with the manager\'s own CA', () => {
  let pinnedState: string;

  it('an agent pinned to the manager\'s CA enrolls over HTTPS and connects over MQTT-over-TLS', async () => {
    pinnedState = dir('pallas-agent-pinned-');
    const agent = startAgentProcess({ managerUrl: manager.httpsUrl, token, stateDir: pinnedState, args: ['--ca', manager.caFile] });
    agents.push(agent);
    await waitFor('pinned agent online', async () => (await devices()).some((d) => d.presence === 'online'), { timeoutMs: 20_000 });
    const credential = JSON.parse(readFileSync(join(pinnedState, 'credential.json'), 'utf8')) as { mqtt: { url: string }; caCertificate?: string };
    assert.match(credential.mqtt.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(credential.caCertificate, readFileSync(manager.caFile, 'utf8'));
    await agent.stop();
  });

  it('an agent pinned to another CA refuses the manager at enrollment', async () => {
    const before = (await devices()).length;
    const agent = startAgentProcess({ managerUrl: manager.httpsUrl, token, stateDir: dir('pallas-agent-impostor-'), args: ['--ca', otherCaFile] });
    agents.push(agent);
    await waitFor('a refused TLS handshake', () => /enrollment failed; will retry/.test(agent.output()), { timeoutMs: 20_000 });
    assert.match(agent.output(), /certificate|self[- ]signed|unable to verify|issuer/i);
    assert.equal((await devices()).length, before, 'no device enrolled');
    await agent.stop();
  });

  it('an agent whose stored credential pins another CA refuses the manager\'s MQTT broker', async () => {
    // The first agent's state, with the pinned CA swapped for the other one: its password is
    // right, so only the certificate check can keep it out.
    const credFile = join(pinnedState, 'credential.json');
    const credential = JSON.parse(readFileSync(credFile, 'utf8')) as { deviceId: string; caCertificate?: string };
    writeFileSync(credFile, JSON.stringify({ ...credential, caCertificate: readFileSync(otherCaFile, 'utf8') }), { mode: 0o600 });
    const rejectedBefore = await tlsRejections();
    const agent = startAgentProcess({ managerUrl: manager.httpsUrl, stateDir: pinnedState, args: ['--log-level', 'debug'] });
    agents.push(agent);
    await waitFor('the agent to refuse the broker\'s certificate', () => /mqtt error/.test(agent.output()) && /certificate|self[- ]signed|issuer/i.test(agent.output()), { timeoutMs: 20_000 });
    assert.doesNotMatch(agent.output(), /"msg":"mqtt connected"/);
    const device = (await admin.get<Device>(`/api/v1/devices/${credential.deviceId}`)).body;
    assert.equal(device.presence, 'offline');
    assert.ok((await tlsRejections()) > rejectedBefore, 'the manager saw the handshake fail');
    await agent.stop();
  });
});

async function tlsRejections(): Promise<number> {
  const text = (await admin.get<string>('/metrics')).body as unknown as string;
  const line = String(text).split('\n').find((l) => l.startsWith('pallas_mqtt_rejected_total{reason="malformed"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}
