import { createReadStream } from 'node:fs';
import type { ArtifactManifest, PowerAction, PowerState, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import { checkPowerAction, checkVmPatch, checkVmSpec } from '../../checks/index.js';
import type { OvaPackage } from '../../ova/ova-package.js';
import type { Driver, DriverHostFacts, OperationContext } from '../driver.js';
import { DriverError, isDriverError, type DriverErrorCode } from '../driver-error.js';
import { SimHost, type Plan } from './sim-host.js';
import { SimStateFile, type SimHistoryEntry, type SimPatch, type SimSnapshot } from './sim-state-file.js';
import { intBetween, pick, seededRandom } from './random.js';

/** The sim driver's operations, as named in `latencyMs` and `failOn`. */
export type SimOperation = 'createVm' | 'powerVm' | 'updateVm' | 'deleteVm' | 'applyPatch';

export interface SimDriverOptions {
  /** Default `sim-{seed, 4 digits}`. */
  hostname?: string;
  /** Default: 4, 8 or 16, chosen from the seed. */
  cpuCores?: number;
  /** Default: 16, 32 or 64 GiB, chosen from the seed. */
  memoryMB?: number;
  /** Default: one `datastore1` of 500–2000 GB. `freeGB` defaults to capacity minus VM disks. */
  datastores?: Array<{ name: string; capacityGB: number; freeGB?: number }>;
  /** Number of VMs on the host. Default 3. */
  vmCount?: number;
  /** Everything above that is not given is derived from it, and so are injected failures. Default 1. */
  seed?: number;
  /**
   * How long each VM operation takes, in ms: one number for all, or per operation (missing
   * ones take the default). Progress is reported in 4 steps spread over that time. Default 50.
   * Operations that change nothing (power on a VM that is on) answer at once.
   */
  latencyMs?: number | Partial<Record<SimOperation, number>>;
  /**
   * Probability (0–1) that a VM operation fails with `host_error`, drawn from a generator
   * seeded by `seed`: the same calls on the same seed fail the same way. Default 0.
   */
  failRate?: number;
  /** Make every call of an operation fail with that code, e.g. `{createVm: 'no_space'}`. Default none. */
  failOn?: Partial<Record<SimOperation, DriverErrorCode>>;
  /**
   * Keep the host's VMs in this JSON file, so that they outlive the agent process like a real
   * host's (the agent uses `<state dir>/sim-host.json`). Edits made to the file by someone
   * else are picked up at the next inventory: a change "by hand on the host". Default: memory only.
   */
  stateFile?: string;
}

const VM_ROLES = ['pos', 'nvr', 'router', 'iot-gw', 'web', 'db', 'kiosk', 'scada', 'cache', 'vpn'] as const;
const GUESTS = ['ubuntu64Guest', 'debian12_64Guest', 'windows2019srv_64Guest', 'rhel9_64Guest', 'other5xLinux64Guest'] as const;
const MODELS = ['Pallas Sim Edge 100', 'Pallas Sim Edge 300', 'Pallas Sim Edge 500'] as const;
const DEFAULT_LATENCY_MS = 50;


/** Progress messages per operation; one step each, evenly spread over the latency. */
const STEPS: Record<SimOperation, string[]> = {
  createVm: ['checking spec', 'allocating disk', 'registering VM', 'created'],
  powerVm: ['sending power request', 'waiting for the VM', 'waiting for the VM', 'done'],
  updateVm: ['checking patch', 'reconfiguring VM', 'reconfiguring VM', 'reconfigured'],
  deleteVm: ['unregistering VM', 'deleting disks', 'deleting disks', 'deleted'],
  applyPatch: ['reading patch', 'installing', 'installing', 'patched'],
};

/**
 * An in-memory hypervisor for demos, the fleet simulator and load tests. Every fact derives
 * from the seed, except uptime, which counts from a seeded boot time in the past.
 *
 * VM operations behave like a small ESXi host's: they take `latencyMs`, report progress,
 * check names, power states and capacity (`SimHost`), and apply their change atomically at
 * the end, so an aborted or failed sim operation never has an effect.
 */
export class SimDriver implements Driver {
  readonly kind = 'sim' as const;
  readonly #host: SimHost;
  readonly #bootedAt: number;
  readonly #options: Readonly<SimDriverOptions>;
  /** Failure draws only: separate from the inventory's generator so failRate changes no facts. */
  readonly #failRandom: () => number;
  /** Aborted by `close()`: operations still running reject with `unavailable`. */
  readonly #closing = new AbortController();
  readonly #file: SimStateFile | undefined;
  #loaded: Promise<void> | undefined;
  #history: SimSnapshot['history'] = [];
  #patch: SimPatch | undefined;

  constructor(options: SimDriverOptions = {}) {
    const { failRate = 0 } = options;
    if (!(failRate >= 0 && failRate <= 1)) throw new RangeError(`sim failRate must be between 0 and 1, got ${failRate}`);
    this.#options = Object.freeze({ ...options });
    const seed = options.seed ?? 1;
    const random = seededRandom(seed);
    this.#failRandom = seededRandom(seed ^ 0x5eed_fa11);
    const cores = options.cpuCores ?? pick(random, [4, 8, 16]);
    const memoryMB = options.memoryMB ?? pick(random, [16, 32, 64]) * 1024;
    const vmCount = options.vmCount ?? 3;

    const vms: Vm[] = [];
    for (let i = 0; i < vmCount; i++) {
      // The first two VMs are on and off, so that every host shows a mix of states.
      const powerState: PowerState = i === 0 ? 'on' : i === 1 ? 'off' : pick(random, ['on', 'on', 'off', 'suspended']);
      vms.push({
        id: `vm-${100 + i}`,
        name: `${pick(random, VM_ROLES)}-${String(i + 1).padStart(2, '0')}`,
        powerState,
        vcpus: pick(random, [1, 2, 2, 4]),
        memoryMB: pick(random, [1024, 2048, 4096, 8192]),
        diskGB: pick(random, [16, 32, 64, 128]),
        guestOs: pick(random, GUESTS),
      });
    }
    const datastores = options.datastores ?? [{ name: 'datastore1', capacityGB: intBetween(random, 5, 20) * 100 }];
    this.#host = new SimHost({
      hostname: options.hostname ?? `sim-${String(seed).padStart(4, '0')}`,
      hypervisor: { kind: 'sim', version: '1.0', build: String(intBetween(random, 10_000, 99_999)) },
      model: pick(random, MODELS),
      cores,
      memoryMB,
      datastores,
      networks: ['Management Network', 'VM Network'],
      vms,
      nextId: 100 + vmCount,
    });
    this.#bootedAt = Date.now() - intBetween(random, 3600, 30 * 86400) * 1000;
    this.#file = options.stateFile ? new SimStateFile(options.stateFile) : undefined;
  }

  /**
   * Loads the state file on first use, then re-reads it when someone changed it. The seeded
   * host is written only at its first change: a fleet of thousands starts without a write.
   */
  async #sync(): Promise<void> {
    if (!this.#file) return;
    this.#loaded ??= (async () => {
      const saved = await this.#file!.load();
      if (saved) this.#restore(saved);
    })();
    await this.#loaded;
    if (await this.#file.changedOnDisk()) {
      const saved = await this.#file.load();
      if (saved) this.#restore(saved);
    }
  }

  #restore(saved: SimSnapshot): void {
    this.#host.restore(saved);
    this.#history = saved.history ?? [];
    this.#patch = saved.patch;
  }

  async #save(change?: Omit<SimHistoryEntry, 'at'>): Promise<void> {
    if (!this.#file) return;
    if (change) this.#history = [...this.#history.slice(-999), { ...change, at: new Date().toISOString() }];
    await this.#file.save({ ...this.#host.snapshot(), history: this.#history, ...(this.#patch ? { patch: this.#patch } : {}) });
  }

  /**
   * Records a call that changed nothing, then rethrows its error. Best effort: the caller's
   * error is what it gets, even if the file cannot be written.
   */
  async #refused(call: Omit<SimHistoryEntry, 'at' | 'refused'>, err: unknown): Promise<never> {
    await this.#save({ ...call, refused: isDriverError(err) ? err.code : 'aborted' }).catch(() => {});
    throw err;
  }

  async hostFacts(): Promise<DriverHostFacts> {
    this.#assertOpen();
    await this.#sync();
    const facts = this.#host.facts();
    if (this.#patch) facts.hypervisor = { ...facts.hypervisor, build: `${this.#patch.name} ${this.#patch.version}`.slice(0, 64) };
    return { ...facts, uptimeSec: Math.floor((Date.now() - this.#bootedAt) / 1000) };
  }

  /**
   * Reads the patch file through (progress 0–90 % follows the bytes, as an upload to a real
   * host would), waits `latencyMs`, then makes the patch's `name version` the host's build,
   * kept in the state file. The sim accepts any content; it checks only that the file is the
   * size the manifest says and that the artifact is a patch.
   */
  async applyPatch(file: string, manifest: ArtifactManifest, ctx: OperationContext): Promise<void> {
    this.#assertOpen();
    await this.#sync();
    if (manifest.kind !== 'patch') throw new DriverError('invalid_spec', `artifact ${manifest.id} is a${manifest.kind === 'ova' ? 'n' : ''} ${manifest.kind}, not a patch`);
    if (this.#patch?.sha256 === manifest.sha256) return; // applied already (a re-run after a crash)
    let done = 0;
    ctx.progress(0, 'reading patch');
    try {
      for await (const chunk of createReadStream(file, { signal: ctx.signal })) {
        done += (chunk as Buffer).length;
        ctx.progress(Math.floor((90 * done) / Math.max(manifest.size, 1)), 'reading patch');
      }
    } catch (err) {
      // The stream rejects with its own AbortError; the contract is the signal's reason as is.
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new DriverError('invalid_spec', `cannot read patch file ${file}: ${(err as Error).message}`);
    }
    if (done !== manifest.size) throw new DriverError('invalid_spec', `patch file ${file} has ${done} bytes, its manifest says ${manifest.size}`);
    const wait = waits([ctx.signal, this.#closing.signal]);
    try {
      await wait.sleep(this.#latency('applyPatch'));
    } finally {
      wait.dispose();
    }
    const injected = this.#injectedFailure('applyPatch');
    if (injected) throw injected;
    this.#patch = { artifactId: manifest.id, name: manifest.name, version: manifest.version, sha256: manifest.sha256, at: new Date().toISOString() };
    await this.#save();
    ctx.progress(100, `patched to ${manifest.name} ${manifest.version}`);
  }

  async listVms(): Promise<Vm[]> {
    this.#assertOpen();
    await this.#sync();
    return this.#host.vms();
  }

  async createVm(spec: VmSpec, ctx: OperationContext): Promise<Vm> {
    const invalid = checkVmSpec.check(spec) ? undefined : await checkVmSpec.explain(spec);
    return this.#operate('createVm', ctx, { name: spec.name }, (vm) => vm.id, () => {
      if (invalid !== undefined) throw new DriverError('invalid_spec', `invalid VM spec: ${invalid}`);
      return this.#host.planCreate(spec);
    });
  }

  async powerVm(vmId: string, action: PowerAction, ctx: OperationContext): Promise<Vm> {
    return this.#operate('powerVm', ctx, { vmId }, () => vmId, () => {
      if (!checkPowerAction.check(action)) throw new DriverError('invalid_spec', `unknown power action "${String(action)}"; valid: on, off, reset, shutdown`);
      return this.#host.planPower(vmId, action);
    });
  }

  async updateVm(vmId: string, patch: VmPatch, ctx: OperationContext): Promise<Vm> {
    const invalid = checkVmPatch.check(patch) ? undefined : await checkVmPatch.explain(patch);
    return this.#operate('updateVm', ctx, { vmId }, () => vmId, () => {
      if (invalid !== undefined) throw new DriverError('invalid_spec', `invalid VM patch: ${invalid}`);
      return this.#host.planUpdate(vmId, patch);
    });
  }

  /**
   * Reads every disk file of the OVA through (as an upload would, so progress follows the
   * bytes: 0–90 %), then creates a VM with the OVF's vCPUs, memory and total disk capacity
   * (90–100 %, with `createVm`'s latency, checks and failures).
   */
  async deployVm(ova: OvaPackage, name: string, ctx: OperationContext): Promise<Vm> {
    this.#assertOpen();
    const { descriptor } = ova;
    const capacity = descriptor.disks.reduce((sum, d) => sum + d.capacityBytes, 0);
    if (capacity === 0) throw new DriverError('invalid_spec', `OVA ${ova.path} has no disk`);
    const spec = { name, vcpus: descriptor.vcpus, memoryMB: descriptor.memoryMB, diskGB: capacity / 1e9 };
    if (!checkVmSpec.check(spec)) throw new DriverError('invalid_spec', `the OVF's VM does not fit: ${await checkVmSpec.explain(spec)}`);
    if (this.#host.vms().some((vm) => vm.name === name)) {
      return this.#refused({ op: 'createVm', name }, new DriverError('invalid_spec', `a VM named "${name}" exists already on this host`));
    }
    const total = Math.max(ova.totalFileBytes, 1);
    let done = 0;
    ctx.progress(0, 'reading OVA');
    for (const disk of ova.disks) {
      if (disk.href === undefined) continue;
      for await (const chunk of ova.openFile(disk.href, ctx.signal)) {
        done += (chunk as Buffer).length;
        ctx.progress(Math.floor((90 * done) / total), `copying ${disk.href}`);
      }
    }
    ctx.signal.throwIfAborted();
    return this.createVm(spec, { signal: ctx.signal, progress: (pct, message) => ctx.progress(90 + Math.floor(pct / 10), message) });
  }

  async deleteVm(vmId: string, ctx: OperationContext): Promise<void> {
    await this.#operate('deleteVm', ctx, { vmId }, () => vmId, () => this.#host.planDelete(vmId));
  }

  /**
   * A change made on the host behind Pallas's back (vSphere client, `virsh`, a guest that
   * crashed or shut itself down): `mutate` edits the VM list in place — add, remove, rename,
   * power off. The result must still be valid `Vm`s with unique ids (else a TypeError and no
   * change); names are not checked, since hosts allow what Pallas would refuse. Datastore
   * space follows the disks; added VMs sit on the datastore with the most free space.
   */
  simulateHostChange(mutate: (vms: Vm[]) => void): void {
    this.#assertOpen();
    const vms = this.#host.vms();
    mutate(vms);
    this.#host.replaceVms(vms);
    // Best effort: a demo helper; the next change through the driver writes the file again.
    this.#save().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new DriverError('unavailable', 'sim driver is closed'));
  }

  #assertOpen(): void {
    this.#closing.signal.throwIfAborted();
  }

  /**
   * Runs one operation: `plan` checks everything (throwing `DriverError`s) and returns the
   * change as a function, marked `noop` if the goal already holds (then it answers at once).
   * Checks run before the wait (fail fast) and again after it, right before the change, since
   * another operation may have changed the host meanwhile. A call that ends in an error is
   * recorded in the history as refused (`asked`: what it named), a change as made.
   */
  async #operate<T>(op: SimOperation, ctx: OperationContext, asked: Omit<SimHistoryEntry, 'op' | 'at'>, target: (result: T) => string, plan: () => Plan<T>): Promise<T> {
    this.#assertOpen();
    await this.#sync();
    let result: T;
    try {
      ctx.signal.throwIfAborted();
      const first = plan();
      if (first.noop) return first.apply();
      result = await this.#change(op, ctx, plan);
    } catch (err) {
      return this.#refused({ op, ...asked }, err);
    }
    await this.#save({ op, ...asked, vmId: target(result) });
    ctx.progress(100, STEPS[op].at(-1));
    return result;
  }

  /** The steps of an operation that will change the host, then the change itself. */
  async #change<T>(op: SimOperation, ctx: OperationContext, plan: () => Plan<T>): Promise<T> {
    // Not AbortSignal.any: on Node 20 its signals stay tied to the long-lived `#closing` one,
    // which would grow with every operation of a load run.
    const wait = waits([ctx.signal, this.#closing.signal]);
    const injected = this.#injectedFailure(op);
    const steps = STEPS[op];
    const stepMs = this.#latency(op) / steps.length;
    try {
      for (let i = 0; i < steps.length - 1; i++) {
        await wait.sleep(stepMs);
        ctx.progress(Math.round(((i + 1) * 100) / steps.length), steps[i]);
      }
      await wait.sleep(stepMs);
    } finally {
      wait.dispose();
    }
    // The last step is the change itself: an injected failure strikes just before it.
    if (injected) throw injected;
    return plan().apply();
  }

  #latency(op: SimOperation): number {
    const l = this.#options.latencyMs;
    return typeof l === 'number' ? l : (l?.[op] ?? DEFAULT_LATENCY_MS);
  }

  #injectedFailure(op: SimOperation): DriverError | undefined {
    const code = this.#options.failOn?.[op];
    if (code !== undefined) return new DriverError(code, `${op} failed: injected failure (sim failOn.${op} = ${code})`);
    const rate = this.#options.failRate ?? 0;
    if (rate > 0 && this.#failRandom() < rate) return new DriverError('host_error', `${op} failed: injected failure (sim failRate ${rate})`);
    return undefined;
  }
}

/**
 * `ms` waits (0 still yields to the event loop) that reject with the reason of the first of
 * `signals` to abort. One set of listeners serves all the waits of an operation: a fan-out has
 * thousands of operations waiting at once, and a listener added and removed per wait was a
 * tenth of the simulated fleet's work. `dispose` when the operation is over.
 */
function waits(signals: readonly AbortSignal[]): { sleep: (ms: number) => Promise<void>; dispose: () => void } {
  let pending: { timer: NodeJS.Timeout; reject: (reason: unknown) => void } | undefined;
  const onAbort = (event: Event): void => {
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.reject((event.target as AbortSignal).reason);
    pending = undefined;
  };
  for (const s of signals) s.addEventListener('abort', onAbort);
  return {
    sleep: (ms) => new Promise<void>((resolve, reject) => {
      const aborted = signals.find((s) => s.aborted);
      if (aborted) return reject(aborted.reason);
      const timer = setTimeout(() => {
        pending = undefined;
        resolve();
      }, ms);
      pending = { timer, reject };
    }),
    dispose: () => {
      if (pending) clearTimeout(pending.timer);
      pending = undefined;
      for (const s of signals) s.removeEventListener('abort', onAbort);
    },
  };
}
