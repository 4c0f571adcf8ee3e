/**
 * A light simulated fleet for load (issue #20 point 2): thousands of LightDevices spread over
 * several worker processes (this machine allows 20,000 open files per process; one socket is
 * one file) and over several loopback source addresses (127.0.0.2, 127.0.0.3 …), so the
 * ephemeral port range — ~28,000 ports per source address — is no limit even when a
 * reconnect storm leaves every old port in TIME_WAIT.
 *
 * Unlike @pallas/sim, which runs the real agent (state dir, journal, driver) per device at
 * ~100 KB+ each, a light device is one socket and a few fields; what it says on the wire is
 * the agent's protocol. Use it to load a manager, not to test the agent.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeviceCredential } from './light-device.js';
import type { ConnectReply, MemoryReply, StatusReply, TasksReply, WorkerReply, WorkerRequest } from './messages.js';

export interface LightFleetOptions {
  host: string;
  port: number;
  keepaliveSec: number;
  /** The status payload without `seq` and `sentAt`: JSON of `{ facts, vms }`. */
  statusBody: string;
  /** Devices per worker process. Default 4,000: sockets well under the 20,000 open-file limit. */
  perProcess?: number;
  /** Loopback source addresses to spread over. Default: one per 5,000 devices, at least 2. */
  sourceAddresses?: number;
  /** Fleet size the processes are planned for (the fleet can grow up to it). */
  maxDevices: number;
}

export interface ConnectResult {
  /** ms from the start of the burst to each device's presence PUBACK. */
  onlineMs: number[];
  online: number;
  /** Why connections were lost and retried (the first 20 reasons per process). */
  lost: string[];
  /** Connections lost and retried during the burst (the device came back unless `online` is short). */
  retries: number;
}

class Worker {
  #waiting: Array<(r: WorkerReply) => void> = [];
  count = 0;
  constructor(readonly child: ChildProcess) {
    child.on('message', (r: WorkerReply) => this.#waiting.shift()?.(r));
  }

  /** Requests are answered in order, one reply each. */
  ask<R extends WorkerReply = WorkerReply>(req: WorkerRequest): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push((r) => r.op === 'error' ? reject(new Error(`light fleet worker: ${r.message}`)) : resolve(r as R));
      this.child.send(req);
    });
  }
}

export class LightFleet {
  readonly #workers: Worker[];
  readonly #addresses: string[];
  readonly #perProcess: number;
  #size = 0;

  private constructor(workers: Worker[], addresses: string[], perProcess: number) {
    this.#workers = workers;
    this.#addresses = addresses;
    this.#perProcess = perProcess;
  }

  static async start(o: LightFleetOptions): Promise<LightFleet> {
    const perProcess = o.perProcess ?? 4000;
    const processes = Math.max(1, Math.ceil(o.maxDevices / perProcess));
    const addresses = Array.from({ length: o.sourceAddresses ?? Math.max(2, Math.ceil(o.maxDevices / 5000)) }, (_, i) => `127.0.0.${2 + i}`);
    const script = fileURLToPath(new URL('./worker.ts', import.meta.url));
    const workers = await Promise.all(Array.from({ length: processes }, async () => {
      const child = fork(script, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const w = new Worker(child);
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`light fleet worker exited with ${code}`)));
      });
      const statusTemplate = { head: '{"seq":', tail: o.statusBody.slice(1) };
      await w.ask({ op: 'setup', host: o.host, port: o.port, keepaliveSec: o.keepaliveSec, statusTemplate });
      return w;
    }));
    return new LightFleet(workers, addresses, perProcess);
  }

  get size(): number {
    return this.#size;
  }

  get processes(): number {
    return this.#workers.length;
  }

  get sourceAddresses(): readonly string[] {
    return this.#addresses;
  }

  /** Adds devices (filling the processes in turn) and connects them all at once. */
  async add(creds: DeviceCredential[], timeoutMs = 300_000): Promise<ConnectResult> {
    const parts = this.#workers.map(() => [] as DeviceCredential[]);
    for (const c of creds) {
      const w = this.#workers.findIndex((w, i) => w.count + parts[i]!.length < this.#perProcess);
      if (w < 0) throw new Error(`light fleet is full (${this.#workers.length} × ${this.#perProcess})`);
      parts[w]!.push(c);
    }
    // Each process picks its source address by its own device index: offset them so the
    // processes together spread evenly.
    const replies = await Promise.all(this.#workers.map((w, i) => {
      w.count += parts[i]!.length;
      const offset = i % this.#addresses.length;
      const addresses = [...this.#addresses.slice(offset), ...this.#addresses.slice(0, offset)];
      return w.ask<ConnectReply>({ op: 'add', creds: parts[i]!, localAddresses: addresses, timeoutMs });
    }));
    this.#size += creds.length;
    return merge(replies);
  }

  /** Every device's connection is cut at once (no DISCONNECT: the broker fires the wills). */
  async drop(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.ask({ op: 'drop' })));
  }

  /**
   * Every device reconnects: at once, or (`spreadMs` > 0) each after a random delay within
   * it, as agents do (their first attempt after a drop is full jitter over the backoff's base).
   */
  async reconnect(options: { spreadMs?: number; timeoutMs?: number } = {}): Promise<ConnectResult> {
    const { spreadMs = 0, timeoutMs = 300_000 } = options;
    return merge(await Promise.all(this.#workers.map((w) => w.ask<ConnectReply>({ op: 'reconnect', timeoutMs, spreadMs }))));
  }

  /** Status reports at `rate` per second over the whole fleet for `seconds`; counts PUBACKs. */
  async status(rate: number, seconds: number): Promise<{ offered: number; acked: number; sendSeconds: number }> {
    const r = await Promise.all(this.#workers.map((w) => w.ask<StatusReply>({ op: 'status', rate: rate / this.#workers.length, seconds })));
    return { offered: r.reduce((s, x) => s + x.offered, 0), acked: r.reduce((s, x) => s + x.acked, 0), sendSeconds: Math.max(...r.map((x) => x.sendSeconds)) };
  }

  /** Epoch ms at which each task result's ack reached its device since the last call; and results never acked. */
  async taskAcks(): Promise<{ ackAt: number[]; unacked: number }> {
    const r = await Promise.all(this.#workers.map((w) => w.ask<TasksReply>({ op: 'tasks' })));
    return { ackAt: r.flatMap((x) => x.ackAt), unacked: r.reduce((s, x) => s + x.unacked, 0) };
  }

  /** The simulator's own RSS, all processes together. */
  async rssBytes(): Promise<number> {
    const r = await Promise.all(this.#workers.map((w) => w.ask<MemoryReply>({ op: 'memory' })));
    return r.reduce((s, x) => s + x.rssBytes, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map(async (w) => {
      const exited = new Promise((r) => w.child.once('exit', r));
      await w.ask({ op: 'close' }).catch(() => {});
      await exited;
    }));
  }
}

function merge(replies: ConnectReply[]): ConnectResult {
  return {
    onlineMs: replies.flatMap((r) => r.onlineMs),
    online: replies.reduce((s, r) => s + r.online, 0),
    lost: replies.flatMap((r) => r.lost),
    retries: replies.reduce((s, r) => s + r.retries, 0),
  };
}
