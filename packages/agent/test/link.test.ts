import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Link } from '../src/link/link.js';
import { FakeManager, waitFor } from './support/fake-manager.js';

const logger = pino({ level: 'silent' });
const deviceId = '6c1a7f0e-2b1d-4b8e-9f3a-0a1b2c3d4e5f';
let fake: FakeManager;

before(async () => {
  fake = await FakeManager.start();
});
after(() => fake.close());

describe('link', () => {
  it('queues QoS 1 publishes while offline and sends them after reconnecting', async () => {
    const link = new Link({ deviceId, mqtt: fake.issue(deviceId).mqtt, logger, backoff: { baseMs: 20, capMs: 50 } });
    link.start();
    await once(link, 'online');
    const offline = once(link, 'offline');
    await fake.stopMqtt();
    await offline;
    const delivered = link.publish('events', { hello: 'while offline' });
    await new Promise((r) => setTimeout(r, 100));
    await fake.startMqtt();
    await once(link, 'online');
    await delivered; // PUBACK came back
    assert.ok(fake.messages('events', deviceId).some((m) => (m.json as { hello?: string }).hello === 'while offline'));
    await link.close({ presence: { reason: 'test done' } });
    await waitFor(() => fake.messages('presence', deviceId).at(-1)?.json !== undefined);
    assert.deepEqual(fake.messages('presence', deviceId).at(-1)?.json, {
      state: 'offline',
      at: (fake.messages('presence', deviceId).at(-1)?.json as { at: string }).at,
      reason: 'test done',
    });
  });

  it('spaces reconnects with exponential backoff, not a fixed period', async () => {
    // A server that accepts and hangs up at once: every attempt is one connection.
    let connections = 0;
    const blackHole = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', () => r()));
    const port = (blackHole.address() as AddressInfo).port;
    const mqtt = { url: `mqtt://127.0.0.1:${port}`, clientId: deviceId, username: deviceId, password: 'x', keepaliveSec: 30 };
    // random = 0.999: delays ≈ 50, 100, 200, 400, 800 ms → attempts at ≈ 0, 50, 150, 350, 750 ms.
    const link = new Link({ deviceId, mqtt, logger, backoff: { baseMs: 50, capMs: 10_000, random: () => 0.999 } });
    link.start();
    await new Promise((r) => setTimeout(r, 1000));
    await link.close();
    blackHole.close();
    assert.ok(connections >= 4 && connections <= 6, `${connections} attempts in 1 s`);
  });

  it('stops reconnecting when the broker refuses the credential', async () => {
    const id = '7d2b8a1f-3c2e-4c9f-8a4b-1b2c3d4e5f60';
    const mqtt = { ...fake.issue(id).mqtt, password: 'wrong' };
    const link = new Link({ deviceId: id, mqtt, logger, backoff: { baseMs: 10, capMs: 20 } });
    const attempts = fake.connectAttempts;
    link.start();
    const [err] = await once(link, 'credential-rejected');
    assert.equal((err as { code: number }).code, 4);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fake.connectAttempts - attempts, 1);
    await link.close();
  });

  it('treats CONNACK 3 (server unavailable) as transient: keeps reconnecting with backoff', async () => {
    const id = '9f4dac31-5e40-4eb1-8c6d-3d4e5f607182';
    const link = new Link({ deviceId: id, mqtt: fake.issue(id).mqtt, logger, backoff: { baseMs: 10, capMs: 20 } });
    let rejected = false;
    link.on('credential-rejected', () => (rejected = true));
    const attempts = fake.connectAttempts;
    fake.refuseNext.push(3, 3, 3);
    link.start();
    await once(link, 'online');
    assert.equal(rejected, false);
    assert.equal(fake.connectAttempts - attempts, 4, 'three refusals, then the credential is taken');
    await link.close();
  });

  it('emits valid control messages and drops the rest', async () => {
    const id = '8e3c9b20-4d3f-4da0-9b5c-2c3d4e5f6071';
    const link = new Link({ deviceId: id, mqtt: fake.issue(id).mqtt, logger });
    const seen: unknown[] = [];
    link.on('control', (m) => seen.push(m));
    link.start();
    // Online means the command subscription is granted (the next test): no pause needed.
    await once(link, 'online');
    await fake.command(id, 'cmd/control', '{broken');
    await fake.command(id, 'cmd/control', { type: 'decommission', extra: 1 });
    await fake.command(id, 'cmd/control', { type: 'decommission' });
    await fake.command(id, 'cmd/control', { type: 'rotate-credential', password: 'short' });
    // The witness, last on the same topic: whatever the link made of the others came before it.
    await fake.command(id, 'cmd/control', { type: 'decommission', reason: 'witness' });
    await waitFor(() => seen.length >= 2);
    assert.deepEqual(seen, [{ type: 'decommission' }, { type: 'decommission', reason: 'witness' }]);
    assert.equal(link.online, true);
    await link.close();
  });

  it('says online only once the command subscription is granted, and emits valid task commands and acks', async () => {
    const id = 'a05ebd42-6f51-4fc2-9d7e-4e5f60718293';
    const order: string[] = [];
    const onSubscribe = (subs: Array<{ topic: string }>, client: { id: string }): void => {
      if (client.id === id) order.push(`subscribe ${subs.map((x) => x.topic.split('/').slice(4).join('/')).join(',')}`);
    };
    const onPublish = (packet: { topic: string }, client: { id: string } | null): void => {
      if (client?.id === id && packet.topic.endsWith('/presence')) order.push('presence');
    };
    fake.aedes.on('subscribe', onSubscribe as never);
    fake.aedes.on('publish', onPublish as never);
    const link = new Link({ deviceId: id, mqtt: fake.issue(id).mqtt, logger });
    const tasks: unknown[] = [];
    const acks: unknown[] = [];
    link.on('task', (m) => tasks.push(m));
    link.on('task-ack', (m) => acks.push(m));
    link.start();
    after(() => link.close());
    await once(link, 'online');
    // No pause: a command sent as soon as the link says online must arrive.
    const run = { type: 'run', taskId: 'tsk_000001', operation: { kind: 'vm.delete', vmId: 'vm-1' }, timeoutMs: 1000 };
    await fake.command(id, 'cmd/task', run);
    await fake.command(id, 'cmd/task', { type: 'run', taskId: 'tsk_000002', operation: { kind: 'vm.format' }, timeoutMs: 1 });
    await fake.command(id, 'cmd/task', { type: 'cancel', taskId: 'tsk_000001' });
    await fake.command(id, 'cmd/task-ack', { taskIds: [] });
    await fake.command(id, 'cmd/task-ack', { taskIds: ['tsk_000001'] });
    await fake.command(id, 'cmd/task', { type: 'run', taskId: 'tsk_000003' });
    await fake.command(id, 'cmd/task-ack', { taskIds: 'tsk_000001' });
    // Witnesses, last on each topic: whatever the link made of the others came before them.
    await fake.command(id, 'cmd/task', { type: 'cancel', taskId: 'tsk_000009' });
    await fake.command(id, 'cmd/task-ack', { taskIds: ['tsk_000009'] });
    await waitFor(() => tasks.length >= 3 && acks.length >= 2);
    assert.deepEqual(tasks, [run, { type: 'cancel', taskId: 'tsk_000001' }, { type: 'cancel', taskId: 'tsk_000009' }]);
    assert.deepEqual(acks, [{ taskIds: ['tsk_000001'] }, { taskIds: ['tsk_000009'] }]);
    await waitFor(() => order.includes('presence'));
    assert.deepEqual(order.slice(0, 2), ['subscribe cmd/#', 'presence']);
    fake.aedes.removeListener('subscribe', onSubscribe as never);
    fake.aedes.removeListener('publish', onPublish as never);
    await link.close();
  });
});
