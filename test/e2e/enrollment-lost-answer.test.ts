/**
 * A first enrollment whose answer is lost on the way (docs/security.md, "A lost enrollment
 * answer"): the manager committed the device, the link dropped before the answer arrived.
 * The agent asks again, with the same single-use token, and must end up online as the one
 * device it is, not refused with `device_id_conflict` for good (a truck roll). A real manager
 * process, real agent processes, and a TCP proxy between them that loses answers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Device, EnrollmentToken } from '@pallas/protocol';
import {
  Api, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor, type ManagerProcess, type Proc,
} from '@pallas/testkit';

let manager: ManagerProcess;
let admin: Api;
const dirs = tempDir('pallas-lost-answer-');
const agents: Proc[] = [];

/**
 * A proxy to the manager's HTTP port that, while `losing` is set, passes each request on and
 * cuts the client's connection when the answer comes back: the manager did the work, the
 * agent never hears of it.
 */
class LosingProxy {
  losing = true;
  lost = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  constructor(private readonly target: number) {
    this.#server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      const lose = this.losing;
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream);
      upstream.on('data', (answer: Buffer) => {
        if (!lose) return void client.write(answer);
        this.lost++;
        client.destroy();
        upstream.destroy();
      });
      upstream.on('end', () => client.end());
      client.on('close', () => upstream.destroy());
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

before(async () => {
  manager = await startManagerProcess();
  admin = await manager.admin();
});

after(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await manager?.close();
  dirs.cleanup();
});

/** The device of the agent of `stateDir` comes online, enrolled with one use of its token. */
async function onlineOnOneUse(stateDir: string, tokenId: string): Promise<void> {
  const deviceId = (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
  await waitFor(`device ${deviceId} online`, async () => (await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.presence === 'online', { timeoutMs: 30_000 });
  const tokens = await admin.get<{ items: EnrollmentToken[] }>('/api/v1/enrollment-tokens?limit=500');
  assert.equal(tokens.body.items.find((t) => t.id === tokenId)?.uses, 1, 'one use of the token, not two');
}

/**
 * An agent enrolls through a proxy that loses the first answer; then (killed and started
 * again when `restart`) it must come online with one use of its single-use token.
 */
async function loseFirstAnswer(name: string, restart: boolean): Promise<void> {
  const proxy = new LosingProxy(Number(new URL(manager.httpUrl).port));
  const url = await proxy.listen();
  try {
    const { token, id } = await singleUseToken(name);
    const stateDir = join(dirs.path, name);
    let agent = startAgentProcess({ managerUrl: url, stateDir, token });
    agents.push(agent);
    await waitFor('the first answer lost', () => proxy.lost >= 1, { timeoutMs: 20_000 });
    if (restart) await agent.kill();
    proxy.losing = false;
    if (restart) {
      agent = startAgentProcess({ managerUrl: url, stateDir, token });
      agents.push(agent);
    }
    await onlineOnOneUse(stateDir, id);
    assert.doesNotMatch(agent.output(), /device_id_conflict/);
    await agent.stop();
  } finally {
    await proxy.close();
  }
}

describe('a first enrollment whose answer was lost', () => {
  it('asked again by the running agent gets a new credential: the device comes online, one device, one use of the token', () => loseFirstAnswer('lost-once', false));

  it('asked again by the agent restarted after it (killed while waiting) gets a new credential too', () => loseFirstAnswer('lost-restart', true));
});

async function singleUseToken(name: string): Promise<{ token: string; id: string }> {
  const token = await createEnrollmentToken(admin, { name, maxUses: 1 });
  const tokens = await admin.get<{ items: EnrollmentToken[] }>('/api/v1/enrollment-tokens?limit=500');
  return { token, id: tokens.body.items.find((t) => t.name === name)!.id };
}
