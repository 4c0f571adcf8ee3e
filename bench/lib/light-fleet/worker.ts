/**
 * One process of the light fleet (started by light-fleet.ts with `fork`). It holds up to a few
 * thousand LightDevices — this machine allows 20,000 open files per process, so a fleet of
 * 15,000 is split over several — and does what the parent asks over IPC, answering each
 * request with one message of the same `op`.
 */
import { PINGREQ } from './mqtt-wire.js';
import { LightDevice, type DeviceCredential, type DeviceHost } from './light-device.js';
import type { WorkerReply, WorkerRequest } from './messages.js';

const devices: LightDevice[] = [];
let onlineMs: number[] = [];
let started = 0;
let waitingFor = 0;
let whenAllOnline: (() => void) | undefined;
let lost: string[] = [];
let retries = 0;
let closing = false;
/** Bumped by `drop`: retries scheduled before it are void. */
let generation = 0;
const countedOnline = new Set<LightDevice>();
let statusAcks = 0;
const taskRunAt = new Map<string, number>();
const taskAckAt: number[] = [];
let statusTemplate = { head: '{"seq":', tail: '}' };
let keepaliveTimer: NodeJS.Timeout | undefined;

const host: DeviceHost & { host: string; port: number; keepaliveSec: number } = {
  host: '127.0.0.1',
  port: 0,
  keepaliveSec: 60,
  presence: () => JSON.stringify({ state: 'online', at: new Date().toISOString(), agentVersion: 'light-sim' }),
  // The status is the sim driver's facts and VMs (built once in the parent), with this
  // device's sequence number and the send time spliced in: no per-device copy of 2 KB.
  status: (seq) => `${statusTemplate.head}${seq},"sentAt":"${new Date().toISOString()}",${statusTemplate.tail}`,
  online(device) {
    // A device back after a retry counts once: at its first time online in this burst.
    if (countedOnline.has(device)) return;
    countedOnline.add(device);
    onlineMs.push(performance.now() - started);
    if (onlineMs.length >= waitingFor) whenAllOnline?.();
  },
  // A connection lost before or after coming online is retried after 1–2 s, as the agent's
  // backoff starts (1 s base); the reasons are kept (first 20) and every retry is counted. A
  // device that never comes back leaves its burst waiting until the timeout: lost for good.
  lost(device, why) {
    retries++;
    if (lost.length < 20) lost.push(`${device.cred.deviceId}: ${why}`);
    const gen = generation;
    setTimeout(() => { if (!closing && gen === generation) device.connect(); }, 1000 + Math.random() * 1000).unref();
  },
  statusAcked: () => void statusAcks++,
  taskRun: (taskId) => void taskRunAt.set(taskId, Date.now()),
  taskAcked(ids) {
    const now = Date.now();
    for (const id of ids) if (taskRunAt.delete(id)) taskAckAt.push(now);
  },
};

/**
 * Connects `list` and waits: all at once (the kernel's backlog and the broker pace them), or
 * each after a random delay within `spreadMs` (the agent's full-jitter first attempt).
 */
async function connectAll(list: LightDevice[], timeoutMs: number, spreadMs = 0): Promise<void> {
  onlineMs = [];
  lost = [];
  retries = 0;
  countedOnline.clear();
  waitingFor = list.length;
  started = performance.now();
  const done = new Promise<void>((resolve) => {
    whenAllOnline = resolve;
    setTimeout(resolve, timeoutMs).unref();
  });
  if (spreadMs > 0) {
    const gen = generation;
    for (const d of list) setTimeout(() => { if (!closing && gen === generation) d.connect(); }, Math.random() * spreadMs).unref();
  } else {
    for (const d of list) d.connect();
  }
  if (list.length) await done;
  whenAllOnline = undefined;
}

async function statusAtRate(rate: number, seconds: number): Promise<{ offered: number; acked: number; sendSeconds: number }> {
  const online = devices.filter((d) => d.isOnline);
  const tickMs = 10;
  const total = Math.round(rate * seconds);
  const ackBase = statusAcks;
  let offered = 0;
  let next = 0;
  const t0 = performance.now();
  while (offered < total && online.length) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / tickMs + 1) * (rate / (1000 / tickMs))));
    while (offered < due) {
      online[next++ % online.length]!.sendStatus();
      offered++;
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  // PUBACKs still on their way are counted too.
  for (let i = 0; i < 50 && statusAcks - ackBase < offered; i++) await new Promise((r) => setTimeout(r, 100));
  return { offered, acked: statusAcks - ackBase, sendSeconds };
}

async function handle(m: WorkerRequest): Promise<WorkerReply> {
  switch (m.op) {
    case 'setup': {
      host.host = m.host;
      host.port = m.port;
      host.keepaliveSec = m.keepaliveSec;
      statusTemplate = m.statusTemplate;
      // One timer pings every device at half its keepalive; a timer per device would cost more than the device.
      clearInterval(keepaliveTimer);
      keepaliveTimer = setInterval(() => { for (const d of devices) d.ping(PINGREQ); }, (m.keepaliveSec * 1000) / 2);
      return { op: 'setup' };
    }
    case 'add': {
      const fresh = m.creds.map((c: DeviceCredential, i) => new LightDevice(c, m.localAddresses[i % m.localAddresses.length]!, host));
      devices.push(...fresh);
      await connectAll(fresh, m.timeoutMs);
      return { op: 'add', onlineMs, lost, retries, online: devices.filter((d) => d.isOnline).length };
    }
    case 'drop':
      // Retries scheduled before the drop must not reconnect devices behind the storm's back.
      generation++;
      for (const d of devices) d.drop();
      return { op: 'drop' };
    case 'reconnect':
      await connectAll(devices, m.timeoutMs, m.spreadMs);
      return { op: 'reconnect', onlineMs, lost, retries, online: devices.filter((d) => d.isOnline).length };
    case 'status':
      return { op: 'status', ...(await statusAtRate(m.rate, m.seconds)) };
    case 'tasks': {
      const acks = taskAckAt.splice(0);
      return { op: 'tasks', ackAt: acks, unacked: taskRunAt.size };
    }
    case 'memory':
      return { op: 'memory', rssBytes: process.memoryUsage().rss, devices: devices.length };
    case 'close':
      closing = true;
      clearInterval(keepaliveTimer);
      for (const d of devices) d.drop();
      setTimeout(() => process.exit(0), 50);
      return { op: 'close' };
  }
}

process.on('message', (m: WorkerRequest) => {
  handle(m).then((reply) => process.send!(reply), (err: Error) => process.send!({ op: 'error', message: err.stack ?? String(err) }));
});
process.send!({ op: 'ready' });
