/**
 * The broker port's contract (issue 17 point 4): one suite every adapter runs, with real MQTT
 * clients as devices over real sockets. `broker-embedded.test.ts` and `broker-external.test.ts`
 * call it with their factory.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceCommandFilter, deviceTopic, upstreamFilter } from '@pallas/protocol';
import { waitFor } from '@pallas/testkit';
import type { Broker } from '../src/broker/broker.js';

export interface DeviceLogin {
  clientId: string;
  username: string;
  password: string;
}

export interface BrokerFixture {
  /** A started manager-side broker adapter; several may run at once on an external broker. */
  manager(): Promise<Broker>;
  /** Where devices connect. */
  deviceUrl: string;
  /** Makes a device that may log in, and returns its login. */
  device(deviceId: string): Promise<DeviceLogin>;
  /** Cuts a device off through what the adapter offers (disconnect, or disabling its account). */
  kick(broker: Broker, deviceId: string, login: DeviceLogin): Promise<void>;
  /** Stops the broker, and starts it again on the same port (external only; see BrokerAbilities). */
  stopBroker?: () => Promise<void>;
  startBroker?: () => Promise<void>;
  cleanup(): Promise<void>;
}

/** What the adapter can be asked (known before the fixture starts, so no test is skipped). */
export interface BrokerAbilities {
  /** Several managers share device messages (a shared subscription); false: one manager only. */
  multipleManagers: boolean;
  /** The broker is a process of its own that can restart under the managers. */
  restartable: boolean;
}

async function connectDevice(url: string, login: DeviceLogin): Promise<MqttClient> {
  const client = mqtt.connect(url, { ...login, clean: true, reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 5000 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

const itWhen = (condition: boolean) => (condition ? it : (_name: string, _fn: () => Promise<void>) => undefined);

export function brokerContract(name: string, abilities: BrokerAbilities, makeFixture: () => Promise<BrokerFixture>): void {
  describe(`broker contract: ${name}`, () => {
    let fx: BrokerFixture;
    const devices: MqttClient[] = [];
    const managers: Broker[] = [];
    const manager = async () => {
      const b = await fx.manager();
      managers.push(b);
      return b;
    };
    const device = async (id: string = randomUUID()) => {
      const login = await fx.device(id);
      const client = await connectDevice(fx.deviceUrl, login);
      devices.push(client);
      return { id, login, client };
    };

    before(async () => {
      fx = await makeFixture();
    });
    after(async () => {
      for (const d of devices) await d.endAsync(true).catch(() => {});
      for (const m of managers) await m.stop().catch(() => {});
      await fx.cleanup();
    });

    it('is healthy once started, and says what it can count', async () => {
      const broker = await manager();
      assert.deepEqual(broker.health(), { ok: true });
      if (broker.kind === 'embedded') assert.equal(typeof broker.connectedCount(), 'number');
      else assert.equal(broker.connectedCount(), null);
    });

    it('delivers device messages to the manager and commands to the device', async () => {
      const broker = await manager();
      const got: Array<[string, string]> = [];
      await broker.subscribe(upstreamFilter('status'), (topic, payload) => got.push([topic, payload.toString()]));
      const { id, client } = await device();
      await client.publishAsync(deviceTopic(id, 'status'), '{"hello":1}', { qos: 1 });
      await waitFor('status at the manager', () => got.length === 1);
      assert.deepEqual(got, [[deviceTopic(id, 'status'), '{"hello":1}']]);

      const commands: string[] = [];
      client.on('message', (_t, p) => commands.push(p.toString()));
      await client.subscribeAsync(deviceCommandFilter(id), { qos: 1 });
      const published: string[] = [];
      broker.on('published', (topic) => published.push(topic));
      await broker.publish(deviceTopic(id, 'cmd/control'), '{"cmd":1}', { qos: 1 });
      await waitFor('command at the device', () => commands.length === 1);
      assert.deepEqual(commands, ['{"cmd":1}']);
      assert.ok(published.includes(deviceTopic(id, 'cmd/control')));
    });

    it('takes a device\'s burst whole while its event loop is held up: nothing dropped', async () => {
      // Only this manager in the group: a shared subscription would hand others a share.
      for (const m of managers.splice(0)) await m.stop();
      const broker = await manager();
      let received = 0;
      await broker.subscribe(upstreamFilter('status'), () => {
        // The first message holds the loop half a second, as a long flush would: meanwhile the
        // broker has everything else to hand over. Mosquitto, left to its device-sized window
        // and queue, dropped what did not fit.
        if (received++ === 0) for (const until = Date.now() + 500; Date.now() < until;);
      });
      const { id, client } = await device();
      // 3,000 reports of 2 KB: three times what fits in Mosquitto's 1,000-message, 1 MiB queue.
      const burst = 3_000;
      const report = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(2_000) });
      await Promise.all(Array.from({ length: burst }, (_, i) => client.publishAsync(deviceTopic(id, 'status'), report(i), { qos: 1 })));
      await waitFor(`all ${burst} at the manager`, () => received >= burst, { timeoutMs: 20_000 });
      assert.equal(received, burst);
    });

    it('takes the manager\'s burst of 20,000 commands published at once, to connected and absent devices', async () => {
      // A fan-out to a large fleet publishes its commands without waiting for each (the
      // outbox awaits a pass's publishes together). Aedes' emitter, past its 100 in flight,
      // queued the rest and drained that queue recursively: 10,000 at once overflowed the
      // stack and killed the manager (found by the scale benchmark at 10,000 devices).
      const broker = await manager();
      const { id, client } = await device();
      let commands = 0;
      client.on('message', () => void commands++);
      await client.subscribeAsync(deviceCommandFilter(id), { qos: 1 });
      const burst = 20_000;
      const toPresent = 200;
      const absent = Array.from({ length: burst - toPresent }, () => randomUUID());
      // Those to the connected device first: their deliveries wait for its socket, so what
      // comes after them queues, and the absent devices' commands are delivered to no one.
      await Promise.all([
        ...Array.from({ length: toPresent }, (_, i) => broker.publish(deviceTopic(id, 'cmd/task'), JSON.stringify({ i }), { qos: 1 })),
        ...absent.map((other) => broker.publish(deviceTopic(other, 'cmd/task'), '{"x":1}', { qos: 1 })),
      ]);
      await waitFor(`all ${toPresent} at the connected device`, () => commands >= toPresent, { timeoutMs: 20_000 });
      assert.equal(commands, toPresent);
      assert.deepEqual(broker.health(), { ok: true });
    });

    it('never retains what the manager publishes', async () => {
      const broker = await manager();
      const { id, client } = await device();
      // A command sent before the device subscribed is not kept for a later subscriber.
      await broker.publish(deviceTopic(id, 'cmd/control'), 'retained?', { qos: 1 });
      const seen: string[] = [];
      client.on('message', (_t, p) => seen.push(p.toString()));
      await client.subscribeAsync(deviceCommandFilter(id), { qos: 1 });
      // A broker sends what it retained as it takes the subscription, before anything published
      // after it: this witness on the same topic comes after a retained message, if there were one.
      await broker.publish(deviceTopic(id, 'cmd/control'), 'witness', { qos: 1 });
      await waitFor('the witness', () => seen.includes('witness'));
      assert.deepEqual(seen, ['witness']);
    });

    // Cases an adapter cannot be asked are not registered (a skipped test fails a strict run).
    itWhen(abilities.multipleManagers)('hands each device message to exactly one manager by default, and to every manager with everyManager', async () => {
      const [m1, m2] = [await manager(), await manager()];
      const shared: string[][] = [[], []];
      const every: string[][] = [[], []];
      for (const [i, m] of [m1, m2].entries()) {
        await m.subscribe(upstreamFilter('task/result'), (_t, p) => shared[i]!.push(p.toString()));
        await m.subscribe(upstreamFilter('presence'), (_t, p) => every[i]!.push(p.toString()), { everyManager: true });
      }
      const { id, client } = await device();
      const n = 40;
      for (let k = 0; k < n; k++) {
        await client.publishAsync(deviceTopic(id, 'task/result'), `r${k}`, { qos: 1 });
        await client.publishAsync(deviceTopic(id, 'presence'), `p${k}`, { qos: 1 });
      }
      await waitFor('every message somewhere', () => shared[0]!.length + shared[1]!.length >= n && every[0]!.length >= n && every[1]!.length >= n);
      // Witnesses after all of them, until each manager has one on each filter: a manager's
      // connection gets its messages in the order the broker routed them, so a duplicate of an
      // earlier message would be in its list before its witness.
      const witnessed = (list: string[], prefix: string) => list.some((m) => m.startsWith(prefix));
      for (let k = 0; !(witnessed(shared[0]!, 'wr') && witnessed(shared[1]!, 'wr')); k++) {
        assert.ok(k < 200, `200 witnesses and still not one at each manager (${shared[0]!.filter((m) => m.startsWith('wr')).length}/${shared[1]!.filter((m) => m.startsWith('wr')).length})`);
        await client.publishAsync(deviceTopic(id, 'task/result'), `wr${k}`, { qos: 1 });
        await waitFor(`witness wr${k}`, () => shared.some((list) => list.includes(`wr${k}`)));
      }
      await client.publishAsync(deviceTopic(id, 'presence'), 'wp', { qos: 1 });
      await waitFor('the presence witness at both managers', () => every.every((list) => list.includes('wp')));
      for (const list of shared) while (list.at(-1)?.startsWith('wr')) list.pop();
      for (const list of every) assert.equal(list.pop(), 'wp', 'the witness came last');
      const all = [...shared[0]!, ...shared[1]!].sort();
      assert.deepEqual(all, Array.from({ length: n }, (_, k) => `r${k}`).sort(), 'each shared message exactly once across the managers');
      assert.ok(shared[0]!.length > 0 && shared[1]!.length > 0, `both managers took a share (${shared[0]!.length}/${shared[1]!.length})`);
      for (const list of every) assert.deepEqual(list, Array.from({ length: n }, (_, k) => `p${k}`), 'everyManager: all, in order');
    });

    itWhen(abilities.multipleManagers)('hands each copy of a message only to the subscription it came through, when one filter is subscribed both shared and by every manager', async () => {
      // Presence is subscribed both ways (docs/scale-out.md): the shared handler must run once
      // per message across the group, the other once per message on each manager.
      const [m1, m2] = [await manager(), await manager()];
      const shared: string[] = [];
      const every: string[][] = [[], []];
      for (const [i, m] of [m1, m2].entries()) {
        await m.subscribe(upstreamFilter('presence'), (_t, p) => shared.push(p.toString()));
        await m.subscribe(upstreamFilter('presence'), (_t, p) => every[i]!.push(p.toString()), { everyManager: true });
      }
      const { id, client } = await device();
      const n = 20;
      for (let k = 0; k < n; k++) await client.publishAsync(deviceTopic(id, 'presence'), `p${k}`, { qos: 1 });
      // A witness last: each manager's connection delivers in the order the broker routed, so a
      // second copy of an earlier message would be in its lists before the witness.
      await client.publishAsync(deviceTopic(id, 'presence'), 'w', { qos: 1 });
      await waitFor('the witness at both managers and in the shared handler', () => every.every((list) => list.includes('w')) && shared.includes('w'));
      const expected = [...Array.from({ length: n }, (_, k) => `p${k}`), 'w'];
      for (const list of every) assert.deepEqual(list, expected, 'every manager: each message once, in order');
      assert.deepEqual([...shared].sort(), [...expected].sort(), 'shared: each message once across the managers');
    });

    it('cuts a device off', async () => {
      const broker = await manager();
      const { id, login, client } = await device();
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      const started = Date.now();
      await fx.kick(broker, id, login);
      await closed;
      assert.ok(Date.now() - started < 1000, `closed within 1 s (${Date.now() - started} ms)`);
    });

    itWhen(abilities.restartable)('comes back after the broker restarts: subscriptions made again, relinked said', async () => {
      // The earlier tests' managers share the status subscription: the broker would hand the
      // message after the restart to any one of them. This manager alone must get it.
      for (const m of managers.splice(0)) await m.stop();
      const broker = await manager();
      const got: string[] = [];
      await broker.subscribe(upstreamFilter('status'), (_t, p) => got.push(p.toString()));
      let relinked = 0;
      broker.on('relinked', () => relinked++);
      await fx.stopBroker!();
      await waitFor('unhealthy while the broker is down', () => !broker.health().ok);
      assert.match(broker.health().detail ?? '', /not connected/);
      await assert.rejects(broker.publish(deviceTopic(randomUUID(), 'cmd/control'), 'x', { qos: 1 }), /not connected/, 'an outage is reported at once, not queued');
      await fx.startBroker!();
      await waitFor('relinked', () => relinked === 1, { timeoutMs: 20_000 });
      assert.deepEqual(broker.health(), { ok: true });
      const { id, client } = await device();
      await client.publishAsync(deviceTopic(id, 'status'), 'after', { qos: 1 });
      await waitFor('status after the restart', () => got.includes('after'));
      await broker.publish(deviceTopic(id, 'cmd/control'), 'x', { qos: 1 });
    });
  });
}
