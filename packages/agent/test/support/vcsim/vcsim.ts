/**
 * The vSphere simulator for tests: govmomi's vcsim as an ESXi host (launcher/main.go) and an
 * independent govmomi client (query/main.go) to check effects without the esxi driver.
 *
 * Both are built from Debian's packages (golang-go, golang-github-vmware-govmomi-dev) in GOPATH
 * mode, once per version of their sources, into ~/.cache/pallas/vcsim-<hash>/ (outside the
 * repo; concurrent test files build into a temp dir and rename, the first one wins).
 * `vcsimSkipReason` says what is missing when Go or govmomi is; tests pass it to testkit's
 * `skipUnless`, which skips on a partial run and fails under CI and npm test.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TOOLS as REQUIRED, missingPathReason, missingToolsReason } from '@pallas/testkit';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const GOPATH = '/usr/share/gocode';
const GOVMOMI = join(GOPATH, 'src/github.com/vmware/govmomi/simulator');
const TOOLS = ['launcher', 'query'] as const;

/** Why vcsim tests cannot run here, or undefined when they can. */
export const vcsimSkipReason: string | undefined =
  missingToolsReason([REQUIRED.go]) ?? missingPathReason(GOVMOMI, 'golang-github-vmware-govmomi-dev');

export interface VcsimTools {
  launcher: string;
  query: string;
}

let building: Promise<VcsimTools> | undefined;

/** Builds (or finds in the cache) the launcher and the query tool. Slow the first time (~2 min). */
export function vcsimTools(): Promise<VcsimTools> {
  building ??= build();
  return building;
}

async function build(): Promise<VcsimTools> {
  const hash = createHash('sha256');
  for (const tool of TOOLS) hash.update(readFileSync(join(here, tool, 'main.go')));
  hash.update(spawnSync('go', ['version'], { encoding: 'utf8' }).stdout);
  const cacheRoot = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pallas');
  const dir = join(cacheRoot, `vcsim-${hash.digest('hex').slice(0, 16)}`);
  const tools = { launcher: join(dir, 'launcher'), query: join(dir, 'query') };
  if (existsSync(tools.launcher) && existsSync(tools.query)) return tools;
  await mkdir(cacheRoot, { recursive: true });
  const tmp = await mkdtemp(join(cacheRoot, 'vcsim-build-'));
  try {
    const env = { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: join(cacheRoot, 'go-build') };
    for (const tool of TOOLS) {
      await run('go', ['build', '-o', join(tmp, tool), '.'], { cwd: join(here, tool), env, maxBuffer: 16 << 20 });
    }
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another test file built it first.
      if (!existsSync(tools.launcher)) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return tools;
}

export interface VcsimOptions {
  /** Default 0: ephemeral. Give the old port to bring a stopped simulator back "on the same host". */
  port?: number;
  user?: string;
  password?: string;
  /** VMs the simulated host starts with. Default 2. */
  vms?: number;
  /** Sessions idle this long (ms) expire, so the next call gets NotAuthenticated. Default: never. */
  sessionIdleTimeoutMs?: number;
  /** Methods the host answers late, in ms: `{ PowerOnVM_Task: 2000 }`. */
  methodDelayMs?: Record<string, number>;
}

export interface VcsimInfo {
  /** The SDK URL, `https://127.0.0.1:<port>/sdk`. */
  url: string;
  port: number;
  user: string;
  password: string;
  /** SHA-256 of the certificate, colon-separated hex. */
  thumbprint: string;
  /** PEM of the (self-signed) certificate, for CA pinning. */
  certFile: string;
}

export interface QueriedVm {
  id: string;
  name: string;
  powerState: 'poweredOn' | 'poweredOff' | 'suspended';
  vcpus: number;
  memoryMB: number;
  guestOs: string;
  disks: Array<{ capacityKB: number; datastore: string; fileName: string }>;
  networks: string[];
}

/** A running simulator. Its inventory lives in the process: `stop` loses it, `start` is a fresh host. */
export class Vcsim {
  readonly tools: VcsimTools;
  info!: VcsimInfo;
  #child: ChildProcess | undefined;
  readonly #options: VcsimOptions;

  private constructor(tools: VcsimTools, options: VcsimOptions) {
    this.tools = tools;
    this.#options = { ...options };
  }

  static async start(options: VcsimOptions = {}): Promise<Vcsim> {
    const sim = new Vcsim(await vcsimTools(), options);
    await sim.start();
    return sim;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Starts the simulator (again: on the port it had, so the driver's URL stays right).
   * `changes` apply from now on: `{ password: 'other' }` makes the agent's password wrong.
   */
  async start(changes: Pick<VcsimOptions, 'password' | 'user'> = {}): Promise<void> {
    if (this.#child !== undefined) return;
    Object.assign(this.#options, changes);
    const o = this.#options;
    const port = this.info?.port ?? o.port ?? 0;
    const args = ['-port', String(port), '-user', o.user ?? 'root', '-password', o.password ?? 'pallas-vcsim', '-vm', String(o.vms ?? 2), '-cert-dir', tmpdir()];
    if (o.sessionIdleTimeoutMs !== undefined) args.push('-idle-timeout', `${o.sessionIdleTimeoutMs}ms`);
    if (o.methodDelayMs !== undefined) args.push('-delay', Object.entries(o.methodDelayMs).map(([m, ms]) => `${m}=${ms}`).join(','));
    // stdin is a pipe the launcher watches: if this process dies, the simulator goes too.
    const child = spawn(this.tools.launcher, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', (l) => resolve(l));
      child.once('exit', (code) => reject(new Error(`vcsim launcher exited (${code}): ${stderr.trim()}`)));
    });
    this.info = JSON.parse(line) as VcsimInfo;
    this.#child = child;
  }

  /** Stops the simulator: the host is unreachable until `start`. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  /** Runs the query tool: `query('vms')`, `query('power-off', name)`, … Resolves with its JSON. */
  async query<T = unknown>(...args: string[]): Promise<T> {
    const { stdout } = await run(this.tools.query, ['-url', this.info.url, '-user', this.info.user, '-password', this.info.password, ...args]);
    return JSON.parse(stdout) as T;
  }

  vms(): Promise<QueriedVm[]> {
    return this.query<QueriedVm[]>('vms');
  }

  async vm(name: string): Promise<QueriedVm | undefined> {
    return (await this.vms()).find((v) => v.name === name);
  }
}
