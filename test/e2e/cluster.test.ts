/**
 * Several managers, end to end (docs/scale-out.md): three real manager processes on one fresh
 * PostgreSQL database and one Debian Mosquitto, behind Debian's nginx, with 50 real agents on
 * the sim driver. Exactly-once is checked on the devices' own state (each sim host's
 * `sim-host.json` history), not only in the API.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Artifact, ClusterStatus, Device, DownloadUrl, LiveEvent, Task, Vm } from '@pallas/protocol';
import {
  createEnrollmentToken, establishedConnectionsOf, mosquittoMissingReason, nginxMissingReason, openEventStream, patchFile, pgSkipReason, skipUnless,
  startAgentProcess, startCluster, tempDir, waitFor, Api, ADMIN_PASSWORD, type Cluster, type Proc,
} from '@pallas/testkit';

const AGENTS = 50;
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

interface SimState {
  vms: Vm[];
  // op is the sim driver's operation name (createVm, powerVm, …: SimOperation).
  /** Every createVm call, refused ones included (a second run of a task is refused: its name is taken). */
  history: Array<{ op: string; vmId?: string; name?: string; refused?: string }>;
}
const simState = (stateDir: string): SimState => JSON.parse(readFileSync(join(stateDir, 'sim-host.json'), 'utf8')) as SimState;
const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
const credentialIn = (stateDir: string) =>
  JSON.parse(readFileSync(join(stateDir, 'credential.json'), 'utf8')) as { mqtt: { url: string; clientId: string; username: string; password: string } };

interface HttpsAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
/** One request over HTTPS trusting only `ca` (node:https: global fetch takes no CA). */
function https(url: string, ca: Buffer, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', ca, headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * The live stream read over HTTPS as raw bytes, each chunk with the time it arrived: what a
 * proxy that buffered would hold back is seen here as late (or missing) chunks.
 */
interface RawStream { status: number; headers: Record<string, string | string[] | undefined>; chunks: Array<{ at: number; text: string }>; events(): Array<{ at: number; event: LiveEvent }>; close(): void }
function rawEventStream(url: string, ca: Buffer, token: string): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    // A proxy that buffers may hold even the headers back: that fails here, not by a hang.
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no answer to ${url} within 10 s (is the stream buffered?)`)); }, 10_000);
    const req = httpsRequest(url, { ca, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, agent: false }, (res) => {
      clearTimeout(timer);
      const chunks: Array<{ at: number; text: string }> = [];
      res.setEncoding('utf8');
      res.on('data', (text: string) => chunks.push({ at: Date.now(), text }));
      res.on('error', () => {});
      resolve({
        status: res.statusCode!, headers: res.headers, chunks,
        events: () => {
          // Frames may be split across chunks: each event counts from the chunk that completed it.
          const out: Array<{ at: number; event: LiveEvent }> = [];
          let buffered = '';
          for (const c of chunks) {
            buffered += c.text;
            let end: number;
            while ((end = buffered.indexOf('\n\n')) >= 0) {
              const frame = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
              if (data) out.push({ at: c.at, event: JSON.parse(data) as LiveEvent });
            }
          }
          return out;
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end();
  });
}

describe('several managers on PostgreSQL and Mosquitto behind nginx', { skip: skipUnless(pgSkipReason, mosquittoMissingReason(), nginxMissingReason()) }, () => {
  let cluster: Cluster;
  let admin: Api;
  let token: string;
  const dirs = tempDir('pallas-e2e-cluster-');
  const agents: Array<{ proc: Proc; stateDir: string; id: string }> = [];
  const managerUrl = (i: number) => cluster.managers[i]!.httpUrl;
  /** The admin session, through manager `i` directly (sessions live in the shared database). */
  const as = (i: number) => new Api(managerUrl(i), admin.token);

  const startAgent = (name: string, server: string): { proc: Proc; stateDir: string } => {
    const stateDir = join(dirs.path, name);
    const config = join(dirs.path, `${name}.json`);
    // Each create takes a little while, so that a manager can be killed while a fan-out is under way.
    writeFileSync(config, JSON.stringify({ sim: { latencyMs: 1_000 } }));
    const proc = startAgentProcess({ managerUrl: server, stateDir, token, args: ['--config', config] });
    return { proc, stateDir };
  };
  const online = async (stateDir: string, via: Api = admin, proc?: Proc): Promise<string> => {
    try {
      const id = await waitFor('device id', () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir), { timeoutMs: 60_000 });
      await waitFor(`device ${id} online`, async () => (await via.get<Device>(`/api/v1/devices/${id}`)).body?.presence === 'online', { timeoutMs: 60_000 });
      return id;
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent output:\n${(proc ?? agents.find((a) => a.stateDir === stateDir)?.proc)?.output().slice(-4_000)}`);
    }
  };
  const task = async (id: string, via: Api = admin): Promise<Task> => (await via.get<Task>(`/api/v1/tasks/${id}`)).body;

  before(async () => {
    cluster = await startCluster({ managers: 3, managerArgs: ['--keepalive-sec', '5', '--status-interval-sec', '10'] });
    admin = await cluster.admin();
    token = await createEnrollmentToken(admin, { maxUses: AGENTS + 10 });
    // Enrolled through the load balancer: whichever manager nginx picks answers.
    // In batches: fifty Node processes starting at once take a small machine a while.
    for (let i = 0; i < AGENTS; i += 10) {
      const batch = Array.from({ length: Math.min(10, AGENTS - i) }, (_, k) => ({ ...startAgent(`agent-${i + k}`, cluster.url), id: '' }));
      agents.push(...batch);
      for (const a of batch) a.id = await online(a.stateDir, admin, a.proc);
    }
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.proc.kill()));
    await cluster?.close();
    dirs.cleanup();
  });

  it('every manager answers any call and knows every device', async () => {
    for (let i = 0; i < 3; i++) {
      const page = (await as(i).get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body;
      assert.equal(page.total, AGENTS, `manager ${i + 1} sees every device online`);
    }
    const status = (await admin.get<ClusterStatus>('/api/v1/cluster')).body;
    assert.equal(status.database, 'postgres');
    assert.equal(status.broker.kind, 'external');
    assert.equal(status.broker.ok, true);
    assert.equal(status.managers.filter((m) => m.alive).length, 3);
    assert.deepEqual(status.leases.map((l) => l.name).sort(), ['audit-prune', 'history-prune', 'history-sample', 'login-throttle-prune', 'stale-presence', 'stranded-tasks', 'task-deadlines', 'unresponsive-presence']);
  });

  it('a fan-out through one manager while another is SIGKILLed: every task ends exactly once, none stuck, devices stay connected', async () => {
    // Followed through the third manager: it must hear of what the other two do.
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const res = await as(0).post<{ taskIds: string[] }>('/api/v1/tasks', {
        operation: { kind: 'vm.create', spec: { name: 'fanout', vcpus: 1, memoryMB: 256, diskGB: 1 } },
        deviceIds: agents.map((a) => a.id),
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const ids = res.body.taskIds;
      assert.equal(ids.length, AGENTS);
      // Mid-way: the tasks are out (each takes a second on its device), no result is in yet.
      await waitFor('tasks sent', async () => (await Promise.all(ids.slice(0, 10).map((id) => task(id, as(0))))).some((t) => t.state !== 'queued'), { timeoutMs: 30_000, intervalMs: 20 });
      await cluster.kill(1);
      const done = await waitFor('every task final', async () => {
        const all = await Promise.all(ids.map((id) => task(id, as(2))));
        return all.every((t) => FINAL.includes(t.state)) && all;
      }, { timeoutMs: 120_000, intervalMs: 500 });
      assert.deepEqual(done.filter((t) => t.state !== 'succeeded').map((t) => `${t.id} ${t.state} ${t.error?.message ?? ''}`), []);
      // On the devices themselves: one VM named fanout, created once.
      for (const a of agents) {
        const sim = simState(a.stateDir);
        assert.equal(sim.vms.filter((v) => v.name === 'fanout').length, 1, `${a.id} has one fanout VM`);
        const vm = sim.vms.find((v) => v.name === 'fanout')!;
        assert.deepEqual(sim.history.filter((h) => h.op === 'createVm' && h.name === 'fanout').map((h) => h.vmId ?? h.refused), [vm.id], `${a.id} asked its host once`);
      }
      // The kill did not touch the devices' broker connections.
      const offline = stream.events.filter((e): e is Extract<LiveEvent, { type: 'device' }> => e.type === 'device' && e.device.presence === 'offline');
      assert.deepEqual(offline, []);
      assert.ok(stream.events.some((e) => e.type === 'task' && ids.includes(e.task.id) && e.task.state === 'succeeded'), 'C heard the results');
    } finally {
      stream.close();
    }
  });

  it('a killed manager restarted rejoins with no operator action', async () => {
    await cluster.restart(1);
    const status = await waitFor('three managers alive', async () => {
      const s = (await admin.get<ClusterStatus>('/api/v1/cluster')).body;
      return s.managers.filter((m) => m.alive).length === 3 && s;
    }, { timeoutMs: 30_000 });
    assert.equal(status.managers.filter((m) => !m.alive).length, 1, 'the killed process is listed as dead');
    // It serves at once, and knows the devices are online (they never left the broker).
    const page = (await as(1).get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body;
    assert.equal(page.total, AGENTS);
    const a = agents[0]!;
    const t = await as(1).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'after-restart', vcpus: 1, memoryMB: 256, diskGB: 1 });
    assert.equal(t.status, 202);
    const final = await waitFor('task final', async () => { const x = await task(t.body.id); return FINAL.includes(x.state) && x; }, { timeoutMs: 30_000 });
    assert.equal(final.state, 'succeeded');
  });

  it('a fan-out through a manager SIGKILLed while it sends: the others take its tasks over, each runs once', async () => {
    const res = await as(2).post<{ taskIds: string[] }>('/api/v1/tasks', {
      operation: { kind: 'vm.create', spec: { name: 'orphaned', vcpus: 1, memoryMB: 256, diskGB: 1 } },
      deviceIds: agents.map((a) => a.id),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    // At once: its tasks are marked sent as they are created and maybe not published.
    await cluster.kill(2);
    const started = Date.now();
    const done = await waitFor('every task final', async () => {
      const all = await Promise.all(res.body.taskIds.map((id) => task(id, as(0))));
      return all.every((t) => FINAL.includes(t.state)) && all;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    console.log(`# fan-out whose manager was killed while sending: all ${done.length} final ${Date.now() - started} ms after the kill`);
    assert.deepEqual(done.filter((t) => t.state !== 'succeeded').map((t) => `${t.id} ${t.state} ${t.error?.message ?? ''}`), []);
    for (const a of agents) {
      const sim = simState(a.stateDir);
      const vm = sim.vms.filter((v) => v.name === 'orphaned');
      assert.equal(vm.length, 1, `${a.id} has one orphaned VM`);
      assert.deepEqual(sim.history.filter((h) => h.op === 'createVm' && h.name === 'orphaned').map((h) => h.vmId ?? h.refused), [vm[0]!.id], `${a.id} asked its host once`);
    }
    await cluster.restart(2);
  });

  it('an event stream on one manager carries the task and device events caused through another', async () => {
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const a = agents[1]!;
      const res = await as(0).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'seen-on-c', vcpus: 1, memoryMB: 256, diskGB: 1 });
      assert.equal(res.status, 202);
      await waitFor('C sees the task succeed', () => stream.events.some((e) => e.type === 'task' && e.task.id === res.body.id && e.task.state === 'succeeded'), { timeoutMs: 30_000 });
      await waitFor('C sees the inventory change', () => stream.events.some((e) => e.type === 'vms' && e.deviceId === a.id && e.vms.some((v) => v.name === 'seen-on-c')), { timeoutMs: 30_000 });
      // A rename through A is what C answers at once (the row is shared); it is no live event:
      // `device` events carry presence, enrollment and removal only (protocol: LiveEvent).
      const renamed = await as(0).patch<Device>(`/api/v1/devices/${a.id}`, { name: 'renamed-through-a' });
      assert.equal(renamed.status, 200);
      assert.equal((await as(2).get<Device>(`/api/v1/devices/${a.id}`)).body.name, 'renamed-through-a');
      // Device events caused through A, on C's stream: a device decommissioned through A goes,
      // and its presence with it.
      const gone = agents.at(-1)!;
      const before = stream.events.length;
      assert.equal((await as(0).delete(`/api/v1/devices/${gone.id}`)).status, 204);
      await waitFor('C sees the device removed', () => stream.events.slice(before).some((e) => e.type === 'device' && e.device.id === gone.id && e.device.removed === true), { timeoutMs: 10_000 });
      // Its agent was told through the broker and stopped.
      await waitFor('the decommissioned agent stops', () => gone.proc.child.exitCode !== null, { timeoutMs: 15_000 });
      agents.pop();
    } finally {
      stream.close();
    }
  });

  it('through nginx over HTTPS (the server block of deploy/nginx/pallas.conf): REST, a console write, and the event stream unbuffered', async () => {
    // nginx's certificate is for 127.0.0.1, issued by the managers' CA: the CA agents pin.
    const ca = readFileSync(cluster.caFile);
    const auth = { authorization: `Bearer ${admin.token}` };
    const status = await https(`${cluster.httpsUrl}/api/v1/cluster`, ca, { headers: auth });
    assert.equal(status.status, 200, status.body.toString());
    assert.equal((JSON.parse(status.body.toString()) as ClusterStatus).managers.filter((m) => m.alive).length, 3);
    // The console's way: a cookie session, and a write carrying the page's Origin and the CSRF
    // token. The manager compares Origin with the Host nginx passes on: nginx must keep the port.
    const login = await https(`${cluster.httpsUrl}/api/v1/auth/login`, ca, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: cluster.httpsUrl }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD, cookie: true }),
    });
    assert.equal(login.status, 200, login.body.toString());
    const cookies = Object.fromEntries(([] as string[]).concat(login.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!.split('=') as [string, string]));
    assert.ok(cookies.pallas_session && cookies.pallas_csrf, `session cookies: ${JSON.stringify(login.headers['set-cookie'])}`);
    // The manager knows the request came over HTTPS (X-Forwarded-Proto from a trusted proxy).
    assert.ok(([] as string[]).concat(login.headers['set-cookie'] ?? []).every((c) => /;\s*Secure/i.test(c)), 'Secure cookies');
    const a = agents[4]!;
    const write = await https(`${cluster.httpsUrl}/api/v1/devices/${a.id}`, ca, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', origin: cluster.httpsUrl, cookie: `pallas_session=${cookies.pallas_session}; pallas_csrf=${cookies.pallas_csrf}`, 'x-csrf-token': cookies.pallas_csrf! },
      body: JSON.stringify({ name: 'renamed-over-https' }),
    });
    assert.equal(write.status, 200, write.body.toString());

    // The live stream through nginx, for one device (so that nothing else fills a buffer):
    // each event must come through as it is written, not when a buffer fills or the stream ends.
    const stream = await rawEventStream(`${cluster.httpsUrl}/api/v1/events?deviceId=${a.id}`, ca, admin.token!);
    try {
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      await waitFor('the stream opened through nginx', () => stream.chunks.some((c) => c.text.includes(': connected')), { timeoutMs: 5_000, intervalMs: 10 });
      const res = await as(0).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'over-https', vcpus: 1, memoryMB: 256, diskGB: 1 });
      const created = Date.now();
      assert.equal(res.status, 202);
      const first = await waitFor('the task\'s first event through nginx', () => stream.events().find((e) => e.event.type === 'task' && e.event.task.id === res.body.id), { timeoutMs: 10_000, intervalMs: 10 });
      console.log(`# event stream through nginx (HTTPS): the task's first event arrived ${first.at - created} ms after the task was created`);
      assert.ok(first.at - created <= 2_000, `the first event came ${first.at - created} ms after the change`);
      // Its end too, while the stream stays open.
      const done = await waitFor('the task\'s success through nginx', () => stream.events().find((e) => e.event.type === 'task' && e.event.task.id === res.body.id && e.event.task.state === 'succeeded'), { timeoutMs: 30_000, intervalMs: 10 });
      const final = await task(res.body.id);
      assert.equal(final.state, 'succeeded');
      assert.ok(done.at - Date.parse(final.finishedAt!) <= 2_000, `success arrived ${done.at - Date.parse(final.finishedAt!)} ms after the task finished`);
    } finally {
      stream.close();
    }
  });

  it('an artifact uploaded through one manager is downloaded through the others (the shared folder), with a device URL', async () => {
    const bytes = patchFile('1.0.0', randomBytes(200_000));
    const up = await fetch(`${managerUrl(0)}/api/v1/artifacts?kind=patch&name=cluster-patch&version=1.0.0`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' }, body: bytes,
    });
    assert.equal(up.status, 201, await up.clone().text());
    const artifact = (await up.json()) as Artifact;
    assert.equal(artifact.sha256, createHash('sha256').update(bytes).digest('hex'));
    // Kept in the shared folder only: no manager holds a copy of its own.
    for (const m of cluster.managers) assert.ok(!JSON.stringify(readdirSync(m.dataDir, { recursive: true })).includes(artifact.id), `${m.dataDir} holds no copy`);
    // Devices download with a signed URL (docs/artifacts.md), resolved against their manager
    // URL: here it is made by manager 2 and fetched from manager 3, then through nginx.
    const made = await as(1).post<DownloadUrl>(`/api/v1/artifacts/${artifact.id}/download-urls`, { deviceId: agents[0]!.id });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const path = new URL(made.body.url).pathname + new URL(made.body.url).search;
    const viaC = await fetch(`${managerUrl(2)}${path}`);
    assert.equal(viaC.status, 200);
    assert.ok(Buffer.from(await viaC.arrayBuffer()).equals(bytes), 'manager 3 serves the bytes uploaded through manager 1');
    const part = await fetch(`${managerUrl(2)}${path}`, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
    // An operator making the URL through nginx over HTTPS gets one that works as it is.
    const ca = readFileSync(cluster.caFile);
    const viaLb = await https(`${cluster.httpsUrl}/api/v1/artifacts/${artifact.id}/download-urls`, ca, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ deviceId: agents[0]!.id }),
    });
    assert.equal(viaLb.status, 201, viaLb.body.toString());
    const url = (JSON.parse(viaLb.body.toString()) as DownloadUrl).url;
    assert.ok(url.startsWith(`${cluster.httpsUrl}/dl/`), url);
    const got = await https(url, ca);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(bytes), 'the bytes through nginx');
  });

  it('block through one manager cuts the device off within a second; enrollment through another', async () => {
    const stream = await openEventStream(managerUrl(2), admin.token!);
    try {
      const a = agents[2]!;
      // The cut is watched on the device's side: the agent's own TCP connection to Mosquitto,
      // read from /proc while the block is under way (not the managers' view of it).
      const links = establishedConnectionsOf(a.proc.pid, cluster.broker.port);
      assert.equal(links.length, 1, `the agent has one link to the broker: ${links.join(', ')}`);
      const link = links[0]!;
      let cutAt: number | undefined;
      const watching = (async () => {
        while (cutAt === undefined) {
          if (!establishedConnectionsOf(a.proc.pid, cluster.broker.port).includes(link)) cutAt = Date.now();
          else await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const started = Date.now();
      const res = await as(0).post(`/api/v1/devices/${a.id}/block`, {});
      const answered = Date.now();
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await Promise.race([watching, new Promise((r) => setTimeout(r, 5_000))]);
      const cut = cutAt;
      cutAt ??= Number.NaN; // stops the watcher
      assert.ok(cut !== undefined, 'the agent\'s connection to the broker was still open 5 s after the block was answered');
      console.log(`# block through manager 1: the agent's broker connection closed ${cut - started} ms after the request was sent, ${cut - answered} ms after its answer (the request took ${answered - started} ms)`);
      assert.ok(cut - answered <= 1_000, `cut off ${cut - answered} ms after the block was answered`);
      // The managers agree, on another manager's stream.
      await waitFor('C hears the device is offline', () => stream.events.some((e) => e.type === 'device' && e.device.id === a.id && e.device.presence === 'offline'), { timeoutMs: 10_000, intervalMs: 20 });
      assert.equal((await admin.get<Device>(`/api/v1/devices/${a.id}`)).body.presence, 'offline');
      // And the broker refuses the device's credential while it is blocked: an MQTT client
      // of our own, with the agent's client id, username and password.
      const { mqtt: credential } = credentialIn(a.stateDir);
      await assert.rejects(
        mqtt.connectAsync(credential.url, { clientId: credential.clientId, username: credential.username, password: credential.password, reconnectPeriod: 0, connectTimeout: 5_000 }),
        (err: Error & { code?: number }) => err.code === 5 || /not authori[sz]ed/i.test(err.message),
      );
      await as(1).post(`/api/v1/devices/${a.id}/unblock`, {});
      await online(a.stateDir);
    } finally {
      stream.close();
    }
    const fresh = startAgent('late-joiner', managerUrl(1));
    agents.push({ ...fresh, id: '' });
    const id = await online(fresh.stateDir, as(2));
    agents.at(-1)!.id = id;
  });

  it('a rotated credential replaces the old one on the broker, and the device keeps working', async () => {
    const a = agents[3]!;
    const res = await as(1).post(`/api/v1/devices/${a.id}/rotate-credential`, {});
    assert.ok(res.status === 200 || res.status === 202, JSON.stringify(res.body));
    // The device takes the new credential and reconnects with it; tasks still reach it.
    await waitFor('rotation confirmed', async () => {
      const audit = (await admin.get<{ items: Array<{ action: string; target?: { id: string } }> }>('/api/v1/audit?action=device.credential-rotated')).body;
      return audit.items.some((e) => e.target?.id === a.id);
    }, { timeoutMs: 30_000 });
    await online(a.stateDir);
    const t = await as(2).post<Task>(`/api/v1/devices/${a.id}/vms`, { name: 'after-rotation', vcpus: 1, memoryMB: 256, diskGB: 1 });
    const final = await waitFor('task final', async () => { const x = await task(t.body.id); return FINAL.includes(x.state) && x; }, { timeoutMs: 30_000 });
    assert.equal(final.state, 'succeeded');
  });
});
