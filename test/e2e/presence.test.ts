/**
 * Presence you can trust (docs/manager.md, "Presence"), end to end: a real agent process on
 * the sim driver, frozen with SIGSTOP (its TCP connection stays open, it sends nothing), turns
 * unresponsive within its status bound, offline when the broker's keepalive ends the
 * connection, keeps `lastSeenAt` at the receive time of its last status throughout, and comes
 * back online with SIGCONT. On the embedded broker, and on two managers sharing Mosquitto and
 * PostgreSQL (the sweep runs on one of them; the other hears it and may get the next status).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Device, DeviceEvent } from '@pallas/protocol';
import {
  createEnrollmentToken, mosquittoMissingReason, nginxMissingReason, openEventStream, pgSkipReason, skipUnless, startAgentProcess, startCluster, startManagerProcess,
  tempDir, waitFor, type Api, type Cluster, type EventStream, type ManagerProcess, type Proc,
} from '@pallas/testkit';

const STATUS_INTERVAL_SEC = 2;
const KEEPALIVE_SEC = 10;
/** presence-bounds.ts: 2 intervals + max(1 s, a tenth of one), swept every quarter interval. */
const UNRESPONSIVE_AFTER_MS = 2 * STATUS_INTERVAL_SEC * 1000 + 1000;
const SWEEP_MS = STATUS_INTERVAL_SEC * 250;
/** The broker ends a silent connection 1.5 keepalives after the client's last packet. */
const KEEPALIVE_CUT_MS = KEEPALIVE_SEC * 1500;
/** HTTP polling every 50 ms, the status buffer's flush (250 ms), a loaded machine. */
const SLACK_MS = 700;
/** How long a fresh `lastSeenAt` must hold before the agent is frozen: over a status flush (250 ms), well under an interval. */
const SETTLE_MS = 400;
const MANAGER_ARGS = ['--keepalive-sec', String(KEEPALIVE_SEC), '--status-interval-sec', String(STATUS_INTERVAL_SEC)];

const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

interface Setup {
  admin: Api;
  /** Where agents enroll and where the live stream is followed. */
  url: string;
  token: string;
  dir: string;
  /** When the broker, at the latest, ends a connection silent since this long (its will). */
  keepaliveCutMs: number;
}

async function frozenAgentScenario(t: TestContext, s: Setup, agents: Proc[]): Promise<void> {
  const stateDir = join(s.dir, 'frozen');
  const agent = startAgentProcess({ managerUrl: s.url, stateDir, token: s.token });
  agents.push(agent);
  const id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir), { timeoutMs: 30_000 });
  const device = async (): Promise<Device> => (await s.admin.get<Device>(`/api/v1/devices/${id}`)).body;
  await waitFor('online with facts', async () => { const d = await device(); return d.presence === 'online' && d.facts !== null; }, { timeoutMs: 30_000 });
  const stream: EventStream = await openEventStream(s.url, s.admin.token!, { deviceId: id });
  const presenceEvents = (): DeviceEvent[] => stream.events.flatMap((e) => (e.type === 'device' ? [e.device] : []));
  try {
    /**
     * Freezes the agent right after a status reached the store, so that no other is on its
     * way: the status's receive time (what `lastSeenAt` then says) is the device's last contact.
     * The new value must hold for a moment first: with two managers, a message of the same
     * burst (the connect's presence beside the first status) may be handled by the other
     * manager and stored a few milliseconds later, and that one is then the last contact.
     */
    const freeze = async (): Promise<{ stoppedAt: number; lastContact: string }> => {
      const seen = (await device()).lastSeenAt;
      let candidate: string | null = seen;
      let since = 0;
      const lastContact = await waitFor('a fresh status that stays the last contact', async () => {
        const now = (await device()).lastSeenAt;
        if (now !== candidate) { candidate = now; since = Date.now(); }
        return candidate !== seen && Date.now() - since >= SETTLE_MS && candidate;
      }, { timeoutMs: 10_000, intervalMs: 20 });
      process.kill(agent.pid, 'SIGSTOP');
      return { stoppedAt: Date.now(), lastContact: lastContact as string };
    };
    const presenceIs = (want: string, timeoutMs: number) => waitFor(`presence ${want}`, async () => { const d = await device(); return d.presence === want && d; }, { timeoutMs, intervalMs: 50 });

    // 1. Frozen, then woken before the keepalive ends it: unresponsive, then online on the same connection.
    let frozen = await freeze();
    try {
      const d = await presenceIs('unresponsive', UNRESPONSIVE_AFTER_MS + SWEEP_MS + 5_000);
      const afterLast = Date.now() - Date.parse(frozen.lastContact);
      t.diagnostic(`unresponsive ${afterLast} ms after its last status, ${Date.now() - frozen.stoppedAt} ms after it froze (bound ${UNRESPONSIVE_AFTER_MS} ms + sweep ${SWEEP_MS} ms)`);
      assert.ok(afterLast >= UNRESPONSIVE_AFTER_MS, `unresponsive too early: ${afterLast} ms after its last status`);
      assert.ok(afterLast <= UNRESPONSIVE_AFTER_MS + SWEEP_MS + SLACK_MS, `unresponsive too late: ${afterLast} ms after its last status`);
      assert.equal(d.lastSeenAt, frozen.lastContact, 'lastSeenAt is its last status, not the judgement');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    const woken = Date.now();
    const back = await presenceIs('online', STATUS_INTERVAL_SEC * 1000 + 5_000);
    t.diagnostic(`online again ${Date.now() - woken} ms after SIGCONT (same connection)`);
    assert.ok(back.lastSeenAt! > frozen.lastContact);

    // 2. Frozen until the broker's keepalive ends the connection: unresponsive, then offline.
    frozen = await freeze();
    try {
      await presenceIs('unresponsive', UNRESPONSIVE_AFTER_MS + SWEEP_MS + 5_000);
      const unresponsiveMs = Date.now() - frozen.stoppedAt;
      const d = await presenceIs('offline', KEEPALIVE_CUT_MS + 10_000);
      const offlineMs = Date.now() - frozen.stoppedAt;
      t.diagnostic(`froze: unresponsive after ${unresponsiveMs} ms, offline after ${offlineMs} ms (keepalive ${KEEPALIVE_SEC} s, cut at ≤ ${s.keepaliveCutMs} ms)`);
      assert.ok(offlineMs <= s.keepaliveCutMs + SLACK_MS, `offline too late: ${offlineMs} ms`);
      assert.ok(offlineMs - unresponsiveMs >= 2_000, 'unresponsive well before the keepalive ends the connection');
      assert.equal(d.lastSeenAt, frozen.lastContact, 'the last will does not move lastSeenAt');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    const resumed = Date.now();
    const again = await presenceIs('online', 30_000);
    t.diagnostic(`online again ${Date.now() - resumed} ms after SIGCONT (new connection)`);
    assert.ok(again.lastSeenAt! > frozen.lastContact);

    // The live stream said the same, each change once, with the last contact.
    await waitFor('stream caught up', () => presenceEvents().at(-1)?.presence === 'online' && presenceEvents().length >= 5, { timeoutMs: 5_000 });
    const changes = presenceEvents().map((e) => e.presence).filter((p, i, all) => i === 0 || all[i - 1] !== p);
    assert.deepEqual(changes.slice(-5), ['unresponsive', 'online', 'unresponsive', 'offline', 'online'], JSON.stringify(presenceEvents()));
    // The second freeze's judgements (with several managers, the will and the stale-presence
    // sweep may both say offline: each manager announces what it handled).
    const judged = presenceEvents().filter((e) => e.presence !== 'online').slice(-3).filter((e) => e.lastSeenAt !== null && e.lastSeenAt >= frozen.lastContact);
    assert.deepEqual([...new Set(judged.map((e) => `${e.presence} ${e.lastSeenAt}`))], [`unresponsive ${frozen.lastContact}`, `offline ${frozen.lastContact}`], JSON.stringify(presenceEvents()));
  } finally {
    stream.close();
  }
}

describe('presence of a frozen agent, embedded broker', () => {
  let manager: ManagerProcess;
  let setup: Setup;
  const dirs = tempDir('pallas-presence-');
  const agents: Proc[] = [];

  before(async () => {
    manager = await startManagerProcess({ args: MANAGER_ARGS });
    const admin = await manager.admin();
    setup = { admin, url: manager.httpUrl, token: await createEnrollmentToken(admin, { maxUses: 5 }), dir: dirs.path, keepaliveCutMs: KEEPALIVE_CUT_MS };
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('turns unresponsive within its bound, offline at keepalive expiry, keeps lastSeenAt at its last status, and comes back', (t) => frozenAgentScenario(t, setup, agents));

  it('is counted in the device list filter and the /metrics gauges', async () => {
    const page = (await setup.admin.get<{ total: number }>('/api/v1/devices?presence=unresponsive')).body;
    assert.equal(page.total, 0);
    const metrics = await fetch(`${manager.httpUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /^pallas_devices\{presence="unresponsive"\} 0$/m);
    assert.match(metrics, /^pallas_devices\{presence="online"\} 1$/m);
  });
});

describe('presence of a frozen agent, two managers on Mosquitto and PostgreSQL', { skip: skipUnless(pgSkipReason, mosquittoMissingReason(), nginxMissingReason()) }, () => {
  let cluster: Cluster;
  let setup: Setup;
  const dirs = tempDir('pallas-presence-cluster-');
  const agents: Proc[] = [];

  before(async () => {
    cluster = await startCluster({ managers: 2, managerArgs: MANAGER_ARGS });
    const admin = await cluster.admin();
    // Mosquitto 2.0 checks keepalives more coarsely than Aedes: its will came 19.4 s after the
    // last packet of a client frozen with keepalive 10 s (docs/manager.md, "Presence").
    setup = { admin, url: cluster.url, token: await createEnrollmentToken(admin, { maxUses: 5 }), dir: dirs.path, keepaliveCutMs: 2 * KEEPALIVE_SEC * 1000 + 1000 };
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await cluster?.close();
    dirs.cleanup();
  });

  it('turns unresponsive within its bound, offline at keepalive expiry, keeps lastSeenAt at its last status, and comes back', (t) => frozenAgentScenario(t, setup, agents));
});
