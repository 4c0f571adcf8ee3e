import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeManager, waitFor } from '../../agent/test/support/fake-manager.js';
import { deviceDirName, startFleet } from '../src/index.js';

let fake: FakeManager;
let root: string;
before(async () => {
  fake = await FakeManager.start();
  root = await mkdtemp(join(tmpdir(), 'pallas-sim-'));
});
after(async () => {
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

describe('fleet', () => {
  it('runs N distinct agents, bounded enrollment concurrency, all online, then stops them', async () => {
    fake.enrollDelayMs = 20;
    const stateDir = join(root, 'fleet');
    const fleet = await startFleet({ manager: fake.httpUrl, token: 'pet_fleet_token_0123456789', devices: 20, concurrency: 4, stateDir });
    await fleet.waitOnline(20, 10_000);
    assert.equal(fleet.onlineCount(), 20);
    assert.equal(fleet.enrolledCount(), 20);
    assert.ok(fake.maxInFlight <= 4, `max in flight ${fake.maxInFlight}`);

    const ids = fleet.agents.map((a) => a.deviceId);
    assert.equal(new Set(ids).size, 20);
    const device1 = JSON.parse(await readFile(join(stateDir, deviceDirName(1), 'device.json'), 'utf8'));
    assert.equal(device1.deviceId, ids[0]);
    const hostnames = new Set(fake.enrollRequests.map((r) => r.facts.hostname));
    assert.ok(hostnames.has('sim-0001') && hostnames.has('sim-0020'));
    const vmLists = new Set(fake.enrollRequests.map((r) => JSON.stringify(r.facts.datastores)));
    assert.ok(vmLists.size > 1, 'devices differ');

    await fleet.stop();
    assert.equal(fleet.onlineCount(), 0);
    assert.ok(fleet.agents.every((a) => a.state === 'stopped'));

    // Same state dir again: same identities, no new enrollment.
    const enrollments = fake.enrollRequests.length;
    const again = await startFleet({ manager: fake.httpUrl, token: 'pet_fleet_token_0123456789', devices: 20, stateDir });
    await again.waitOnline(20, 10_000);
    assert.deepEqual(again.agents.map((a) => a.deviceId), ids);
    assert.equal(fake.enrollRequests.length, enrollments);
    await again.stop();
    await waitFor(() => fake.aedes.connectedClients === 0, 5000, 'all disconnected');
  });
});
