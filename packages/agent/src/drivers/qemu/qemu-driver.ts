import { isAbsolute, join } from 'node:path';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import type { PowerAction, PowerState, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import { checkPowerAction, checkVmPatch, checkVmSpec } from '../../checks/index.js';
import type { Driver, DriverHostFacts, OperationContext } from '../driver.js';
import { DriverError, isDriverError } from '../driver-error.js';
import { cpuInfo, diskSpace, hardwareModel, hostNetworks, memoryInfo } from './host-probe.js';
import { KeyedLock } from './keyed-lock.js';
import { QmpClient } from './qmp-client.js';
import { kvmUsable, processAlive, qemuArgs, qemuVersion, removeRuntimeFiles, run, runningQemu, waitForExit, type Accel } from './qemu-process.js';
import { VmStore, type VmPaths, type VmRecord } from './vm-store.js';
import type { OvaPackage } from '../../ova/index.js';
import { ovaDiskSources } from './ova-disk-source.js';
import { makeDeployedDisks } from './ova-disks.js';

export interface QemuDriverOptions {
  /** Folder of the VM folders (definitions, disks, sockets). The agent passes `<stateDir>/qemu`. Required. */
  dir: string;
  /** QEMU binary. Default `qemu-system-x86_64` from PATH. */
  binary?: string;
  /** Disk tool. Default `qemu-img` from PATH. */
  qemuImg?: string;
  /** `kvm`, `tcg`, or `auto` (default): KVM when /dev/kvm opens read-write, else TCG (slow, works anywhere). */
  accel?: 'auto' | Accel;
  /** How long `shutdown` waits for the guest to power off, in ms. Default 120,000. */
  shutdownTimeoutMs?: number;
  /** How long a VM's monitor may take to greet and answer, in ms. Default 5000. */
  qmpTimeoutMs?: number;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 120_000;
/** After `quit`, QEMU exits at once; past this, it is killed (a hard power-off is what was asked). */
const QUIT_GRACE_MS = 5_000;
/** sun_path is 108 bytes with its NUL; QEMU and Node both refuse longer socket paths. */
const MAX_SOCKET_PATH = 107;


interface Runtime {
  accel: Accel;
  version: { version: string; build?: string };
}

/** A VM's power state read from its process and monitor, never remembered. */
interface Observed {
  powerState: PowerState;
  pid: number | undefined;
  /** QMP `query-status` status, when it runs. */
  status?: string;
}

/**
 * The qemu driver: each VM is a folder under `dir` (see `VmStore`) and, while on, one detached
 * `qemu-system-x86_64` process controlled over its QMP socket.
 *
 * It keeps no VM state in memory: definitions are read from `vm.json`, power states from the
 * processes (pid file, `/proc`) and their monitors (`query-status`) at every call. So a
 * restarted agent, or a second driver on the same folder, sees exactly what runs, and a VM
 * that shut itself down shows as off at the next look.
 *
 * QMP connections last one step of one operation: QEMU's monitor serves one client at a time,
 * and holding it would lock out an operator's `socat` (and tests that check independently).
 */
export class QemuDriver implements Driver {
  readonly kind = 'qemu' as const;
  readonly #options: Readonly<Required<Omit<QemuDriverOptions, 'dir'>> & { dir: string }>;
  readonly #store: VmStore;
  readonly #locks = new KeyedLock();
  readonly #closing = new AbortController();
  readonly #clients = new Set<QmpClient>();
  #runtime: Promise<Runtime> | undefined;

  constructor(options: QemuDriverOptions) {
    if (typeof options?.dir !== 'string' || options.dir === '') throw new TypeError('qemu driver: option "dir" is required');
    const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (!(shutdownTimeoutMs >= 0)) throw new RangeError(`qemu shutdownTimeoutMs must be ≥ 0, got ${shutdownTimeoutMs}`);
    this.#options = Object.freeze({
      dir: options.dir,
      binary: options.binary ?? 'qemu-system-x86_64',
      qemuImg: options.qemuImg ?? 'qemu-img',
      accel: options.accel ?? 'auto',
      shutdownTimeoutMs,
      qmpTimeoutMs: options.qmpTimeoutMs ?? 5_000,
    });
    this.#store = new VmStore(options.dir);
  }

  async hostFacts(): Promise<DriverHostFacts> {
    const rt = await this.#start();
    const [space, networks, model] = await Promise.all([diskSpace(this.#store.dir), hostNetworks(), hardwareModel()]);
    const mem = memoryInfo();
    const gb = (bytes: number): number => Math.floor(bytes / 1e7) / 100;
    return {
      hostname: os.hostname().slice(0, 255) || 'localhost',
      hypervisor: { kind: 'qemu', ...rt.version },
      ...(model === undefined ? {} : { model }),
      cpu: cpuInfo(),
      memory: { totalMB: mem.totalMB, usedMB: Math.max(0, mem.totalMB - mem.freeMB) },
      datastores: [{ name: this.#store.dir.slice(-255), capacityGB: gb(space.capacity), freeGB: gb(space.free) }],
      networks,
      uptimeSec: Math.floor(os.uptime()),
    };
  }

  async listVms(): Promise<Vm[]> {
    await this.#start();
    try {
      const records = await this.#store.list();
      return await Promise.all(records.map(async (r) => toVm(r, (await this.#observe(r)).powerState)));
    } catch (err) {
      throw this.#mapError(err, 'listing VMs');
    }
  }

  async createVm(spec: VmSpec, ctx: OperationContext): Promise<Vm> {
    return this.#operate(ctx, 'creating a VM', async (signal) => {
      if (!checkVmSpec.check(spec)) throw new DriverError('invalid_spec', `invalid VM spec: ${await checkVmSpec.explain(spec)}`);
      ctx.progress(0, 'checking spec');
      return this.#locks.run('catalog', signal, async () => {
        await this.#checkNameFree(spec.name, undefined);
        checkFits(spec.name, spec.vcpus, spec.memoryMB);
        const networks = await hostNetworks();
        const network = spec.network ?? networks[0]!;
        if (!networks.includes(network)) {
          throw new DriverError('invalid_spec', `no network "${network}" on host ${os.hostname()}; networks: ${networks.join(', ')}`);
        }
        if (spec.bootImage !== undefined) await checkBootImage(spec.bootImage);
        const diskBytes = Math.ceil((spec.diskGB * 1e9) / 512) * 512;
        const { free } = await diskSpace(this.#store.dir);
        if (free < diskBytes) {
          throw new DriverError('no_space', `not enough space in ${this.#store.dir} on host ${os.hostname()} for the ${spec.diskGB} GB disk of VM "${spec.name}" (${Math.floor(free / 1e7) / 100} GB free)`);
        }
        signal.throwIfAborted();
        ctx.progress(10, 'allocating disk');
        const id = await this.#store.allocateId();
        const staged = await this.#store.stage(id);
        const record: VmRecord = {
          id,
          name: spec.name,
          vcpus: spec.vcpus,
          memoryMB: spec.memoryMB,
          diskGB: spec.diskGB,
          network,
          ...(spec.bootImage === undefined ? {} : { bootImage: spec.bootImage }),
          createdAt: new Date().toISOString(),
        };
        try {
          // qcow2 is sparse: the disk takes space as the guest writes, up to diskGB.
          await run(this.#options.qemuImg, ['create', '-q', '-f', 'qcow2', staged.disk, String(diskBytes)], { signal });
          ctx.progress(70, 'registering VM');
          await this.#store.write(record, staged);
          signal.throwIfAborted();
          await this.#store.commit(staged, id);
        } catch (err) {
          await this.#store.discard(staged);
          throw err;
        }
        ctx.progress(100, 'created');
        return toVm(record, 'off');
      });
    });
  }

  /**
   * A VM from an OVA: the OVF's vCPUs and memory, its disks converted to qcow2 by qemu-img
   * straight out of the OVA (see `ova-disk-source.ts`), stored like `createVm`'s VMs so every
   * other operation treats it the same.
   *
   * The names lock is held for the checks and again for the commit, not during the conversion
   * (minutes for a large disk: creates and renames must not wait that long); a name taken in
   * between fails the deploy at the commit, with its disks discarded.
   */
  async deployVm(ova: OvaPackage, name: string, ctx: OperationContext): Promise<Vm> {
    return this.#operate(ctx, `deploy of OVA ${ova.path}`, async (signal) => {
      ctx.progress(0, 'checking OVA');
      const { descriptor } = ova;
      if (ova.disks.length === 0) throw new DriverError('invalid_spec', `OVA ${ova.path} has no disk; the qemu driver needs at least one`);
      const capacity = ova.disks.reduce((sum, d) => sum + d.capacityBytes, 0);
      const spec = { name, vcpus: descriptor.vcpus, memoryMB: descriptor.memoryMB, diskGB: capacity / 1e9 };
      if (!checkVmSpec.check(spec)) throw new DriverError('invalid_spec', `the OVF's VM does not fit: ${await checkVmSpec.explain(spec)}`);
      const sources = await ovaDiskSources(ova);
      const { id, staged, network } = await this.#locks.run('catalog', signal, async () => {
        await this.#checkNameFree(name, undefined);
        checkFits(name, spec.vcpus, spec.memoryMB);
        // One NIC: on the host network named like the OVF's first network, else the default.
        const networks = await hostNetworks();
        const network = descriptor.networks.find((n) => networks.includes(n)) ?? networks[0]!;
        // The disks' capacity, as createVm checks diskGB: a qcow2 may grow that far as the guest
        // writes. (The VMDK sizes would say nothing: streamOptimized VMDKs are compressed.)
        const { free } = await diskSpace(this.#store.dir);
        if (free < capacity) {
          throw new DriverError('no_space', `not enough space in ${this.#store.dir} on host ${os.hostname()} for the ${Math.ceil(capacity / 1e7) / 100} GB of disks of VM "${name}" from OVA ${ova.path} (${Math.floor(free / 1e7) / 100} GB free)`);
        }
        signal.throwIfAborted();
        const id = await this.#store.allocateId();
        return { id, staged: await this.#store.stage(id), network };
      });
      try {
        const files = await makeDeployedDisks(this.#options.qemuImg, staged.dir, sources, signal, (fraction, message) => ctx.progress(5 + Math.floor(90 * fraction), message));
        ctx.progress(95, 'registering VM');
        const record: VmRecord = {
          id,
          name,
          vcpus: spec.vcpus,
          memoryMB: spec.memoryMB,
          diskGB: spec.diskGB,
          network,
          ...(files.length > 1 ? { extraDisks: files.slice(1) } : {}),
          createdAt: new Date().toISOString(),
        };
        await this.#store.write(record, staged);
        await this.#locks.run('catalog', signal, async () => {
          await this.#checkNameFree(name, undefined);
          signal.throwIfAborted();
          await this.#store.commit(staged, id);
        });
        ctx.progress(100, 'deployed');
        return toVm(record, 'off');
      } catch (err) {
        // Also on abort: qemu-img has exited by now (the conversion settles after its exit).
        await this.#store.discard(staged);
        throw err;
      }
    });
  }

  async powerVm(vmId: string, action: PowerAction, ctx: OperationContext): Promise<Vm> {
    return this.#operate(ctx, `${String(action)} of VM ${String(vmId)}`, async (signal) => {
      if (!checkPowerAction.check(action)) throw new DriverError('invalid_spec', `unknown power action "${String(action)}"; valid: on, off, reset, shutdown`);
      return this.#locks.run(vmId, signal, async () => {
        const record = await this.#find(vmId);
        const paths = this.#store.paths(record.id);
        const now = action === 'off' ? await this.#observeForOff(record) : await this.#observe(record);
        const refuse = (why: string): never => {
          throw new DriverError('invalid_state', `cannot ${action} VM "${record.name}" (${record.id}): ${why}`);
        };
        switch (action) {
          case 'on':
            if (now.powerState === 'on') return toVm(record, 'on');
            if (now.powerState === 'suspended') {
              ctx.progress(10, 'resuming');
              signal.throwIfAborted();
              // A guest that suspended itself (ACPI S3) wakes up; one paused by the monitor continues.
              await this.#qmp(paths, (q) => q.execute(now.status === 'suspended' ? 'system_wakeup' : 'cont'));
            } else {
              await this.#powerOn(record, paths, now, ctx, signal);
            }
            break;
          case 'off':
            if (now.powerState === 'off') return toVm(record, 'off');
            ctx.progress(10, 'stopping QEMU');
            signal.throwIfAborted();
            await this.#powerOff(record, paths, now.pid!);
            break;
          case 'reset':
            if (now.powerState !== 'on') refuse(`it is ${now.powerState}`);
            ctx.progress(10, 'resetting');
            signal.throwIfAborted();
            await this.#qmp(paths, (q) => q.execute('system_reset'));
            break;
          case 'shutdown':
            if (now.powerState === 'off') return toVm(record, 'off');
            if (now.powerState === 'suspended') refuse('it is suspended; power it on first, or power it off');
            await this.#shutdown(record, paths, now.pid!, ctx, signal);
            break;
        }
        const after = await this.#observe(record);
        ctx.progress(100, 'done');
        return toVm(record, after.powerState);
      });
    });
  }

  async updateVm(vmId: string, patch: VmPatch, ctx: OperationContext): Promise<Vm> {
    return this.#operate(ctx, `update of VM ${String(vmId)}`, async (signal) => {
      if (!checkVmPatch.check(patch)) throw new DriverError('invalid_spec', `invalid VM patch: ${await checkVmPatch.explain(patch)}`);
      return this.#locks.run(vmId, signal, () =>
        // The catalog lock too: a rename must not race a create (or another rename) to one name.
        this.#locks.run('catalog', signal, async () => {
          const record = await this.#find(vmId);
          const rename = patch.name !== undefined && patch.name !== record.name;
          const reshape = (patch.vcpus !== undefined && patch.vcpus !== record.vcpus) || (patch.memoryMB !== undefined && patch.memoryMB !== record.memoryMB);
          if (rename) await this.#checkNameFree(patch.name!, record.id);
          const { powerState } = await this.#observe(record);
          if (reshape) {
            checkFits(patch.name ?? record.name, patch.vcpus ?? record.vcpus, patch.memoryMB ?? record.memoryMB);
            if (powerState !== 'off') {
              throw new DriverError('invalid_state', `cannot change vCPUs or memory of VM "${record.name}" (${record.id}) while it is ${powerState}; power it off first`);
            }
          }
          if (!rename && !reshape) return toVm(record, powerState);
          ctx.progress(50, 'reconfiguring VM');
          signal.throwIfAborted();
          // A running QEMU keeps the -name it started with; the new name shows in QEMU from the next power-on.
          const next: VmRecord = { ...record, name: patch.name ?? record.name, vcpus: patch.vcpus ?? record.vcpus, memoryMB: patch.memoryMB ?? record.memoryMB };
          await this.#store.write(next);
          ctx.progress(100, 'reconfigured');
          return toVm(next, powerState);
        }),
      );
    });
  }

  async deleteVm(vmId: string, ctx: OperationContext): Promise<void> {
    await this.#operate(ctx, `delete of VM ${String(vmId)}`, async (signal) => {
      await this.#locks.run(vmId, signal, async () => {
        const record = await this.#find(vmId);
        const now = await this.#observe(record);
        if (now.powerState !== 'off' || now.pid !== undefined) {
          throw new DriverError('invalid_state', `cannot delete VM "${record.name}" (${record.id}) while it is ${now.powerState === 'off' ? 'still stopping' : now.powerState}; power it off first`);
        }
        ctx.progress(10, 'deleting disks');
        signal.throwIfAborted();
        await this.#store.remove(record.id);
        ctx.progress(100, 'deleted');
      });
    });
  }

  /** Closes monitor connections; the VMs keep running (they belong to the host, not the agent). */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new DriverError('unavailable', 'qemu driver is closed'));
    for (const client of this.#clients) client.close();
    this.#clients.clear();
  }

  // --- steps --------------------------------------------------------------------------------

  async #powerOn(record: VmRecord, paths: VmPaths, now: Observed, ctx: OperationContext, signal: AbortSignal): Promise<void> {
    // A QEMU whose guest just powered off may still be on its way out.
    if (now.pid !== undefined && !(await waitForExit(now.pid, QUIT_GRACE_MS, signal))) {
      throw new DriverError('host_error', `VM "${record.name}" (${record.id}): the previous QEMU process (pid ${now.pid}) has not exited yet; try again`);
    }
    const { freeMB } = memoryInfo();
    if (record.memoryMB > freeMB) {
      throw new DriverError('no_space', `not enough free memory on host ${os.hostname()} to power on VM "${record.name}" (${record.id}): needs ${record.memoryMB} MB, ${freeMB} MB free`);
    }
    if (record.bootImage !== undefined) await checkBootImage(record.bootImage);
    ctx.progress(10, 'starting QEMU');
    signal.throwIfAborted();
    const rt = await this.#start();
    await removeRuntimeFiles(paths);
    // Not given the signal: killing QEMU's parent halfway through -daemonize could leave a
    // VM running that nobody was told about. Starting takes well under a second.
    await run(this.#options.binary, qemuArgs(record, paths, rt.accel), { timeoutMs: 60_000 });
    ctx.progress(80, 'waiting for the VM');
  }

  async #powerOff(record: VmRecord, paths: VmPaths, pid: number): Promise<void> {
    let asked = false;
    try {
      await this.#qmp(paths, (q) => {
        asked = true;
        return q.execute('quit');
      });
    } catch {
      // QEMU often closes the socket before its answer to `quit` arrives; and a hung monitor
      // must not stop a hard power-off: the wait below decides, then the kill.
    }
    const never = new AbortController().signal;
    // Asked, QEMU exits at once; a monitor we could not even reach gets no grace period.
    if (!(await waitForExit(pid, asked ? QUIT_GRACE_MS : 0, never))) {
      process.kill(pid, 'SIGKILL');
      if (!(await waitForExit(pid, QUIT_GRACE_MS, never))) {
        throw new DriverError('host_error', `VM "${record.name}" (${record.id}): QEMU (pid ${pid}) did not exit after quit and SIGKILL`);
      }
    }
    await removeRuntimeFiles(paths);
  }

  async #shutdown(record: VmRecord, paths: VmPaths, pid: number, ctx: OperationContext, signal: AbortSignal): Promise<void> {
    ctx.progress(5, 'asking the guest to shut down');
    signal.throwIfAborted();
    await this.#qmp(paths, (q) => q.execute('system_powerdown'));
    const timeoutMs = this.#options.shutdownTimeoutMs;
    // Progress follows the time allowed, up to 95 %: the guest never says how far it got.
    const exited = await waitForExit(pid, timeoutMs, signal, (elapsed) => {
      ctx.progress(5 + Math.floor((90 * elapsed) / Math.max(1, timeoutMs)), 'waiting for the guest to shut down');
    });
    if (!exited) {
      throw new DriverError(
        'host_error',
        `VM "${record.name}" (${record.id}): the guest did not shut down within ${Math.round(timeoutMs / 1000)} s of the ACPI power-button request ` +
          '(no OS, or an OS that ignores ACPI); it is still on. Power it off (hard) or try again.',
      );
    }
    await removeRuntimeFiles(paths);
  }

  // --- plumbing ------------------------------------------------------------------------------

  /**
   * First call: checks QEMU is installed, picks KVM or TCG, creates the folder and re-attaches,
   * i.e. forgets the runtime files of VMs whose QEMU is gone (after a host reboot, a crash).
   * The VMs that still run need nothing: their state is read from them at every call.
   */
  #start(): Promise<Runtime> {
    this.#closing.signal.throwIfAborted();
    this.#runtime ??= this.#probe().catch((err: unknown) => {
      this.#runtime = undefined; // try again at the next call: qemu may get installed
      throw err;
    });
    return this.#runtime;
  }

  async #probe(): Promise<Runtime> {
    let version: Runtime['version'];
    try {
      version = await qemuVersion(this.#options.binary);
    } catch (err) {
      throw new DriverError('unavailable', `cannot run ${this.#options.binary} on host ${os.hostname()}: ${errorText(err)} (install QEMU: apt-get install qemu-system-x86 qemu-utils)`, { cause: err });
    }
    const probe = join(this.#store.dir, 'vm-1000000', 'qmp.sock');
    if (Buffer.byteLength(probe) > MAX_SOCKET_PATH) {
      throw new DriverError('unavailable', `qemu driver folder ${this.#store.dir} is too long a path for QMP unix sockets (${MAX_SOCKET_PATH} bytes at most for ${probe}); choose a shorter --qemu-dir`);
    }
    try {
      await this.#store.init();
      for (const record of await this.#store.list()) {
        const paths = this.#store.paths(record.id);
        if ((await runningQemu(paths)) === undefined) await removeRuntimeFiles(paths);
      }
    } catch (err) {
      throw new DriverError('unavailable', `cannot use qemu driver folder ${this.#store.dir}: ${errorText(err)}`, { cause: err });
    }
    const wanted = this.#options.accel;
    const accel: Accel = wanted === 'auto' ? ((await kvmUsable()) ? 'kvm' : 'tcg') : wanted;
    return { accel, version };
  }

  async #observe(record: VmRecord): Promise<Observed> {
    const paths = this.#store.paths(record.id);
    const pid = await runningQemu(paths);
    if (pid === undefined) return { powerState: 'off', pid };
    let status: string;
    try {
      status = (await this.#qmp(paths, (q) => q.execute<{ status: string }>('query-status'))).status;
    } catch (err) {
      // It may have exited between the two looks: then it is off, and that is no guess.
      if (!(await processAlive(pid))) return { powerState: 'off', pid: undefined };
      if (isDriverError(err)) throw err;
      throw new DriverError(
        'host_error',
        `VM "${record.name}" (${record.id}): QEMU runs (pid ${pid}) but its monitor ${paths.qmp} does not answer (${errorText(err)}); is another client connected to it? Power it off to stop it anyway.`,
        { cause: err },
      );
    }
    return { powerState: powerStateOf(status), pid, status };
  }

  /**
   * For a hard power-off, a QEMU that runs but whose monitor does not answer is still to be
   * stopped: that is when an operator needs `off` most.
   */
  async #observeForOff(record: VmRecord): Promise<Observed> {
    try {
      return await this.#observe(record);
    } catch (err) {
      const pid = await runningQemu(this.#store.paths(record.id));
      if (pid === undefined || !isDriverError(err, 'host_error')) throw err;
      return { powerState: 'on', pid };
    }
  }

  /** One QMP session: connect, run `fn`, disconnect. Tracked so that `close()` can cut it. */
  async #qmp<T>(paths: VmPaths, fn: (client: QmpClient) => Promise<T>): Promise<T> {
    this.#closing.signal.throwIfAborted();
    const t = this.#options.qmpTimeoutMs;
    const { client } = await QmpClient.connect(paths.qmp, { timeoutMs: t, commandTimeoutMs: Math.max(t, 10_000) });
    if (this.#closing.signal.aborted) {
      client.close();
      throw this.#closing.signal.reason;
    }
    this.#clients.add(client);
    try {
      return await fn(client);
    } finally {
      client.close();
      this.#clients.delete(client);
    }
  }

  async #find(vmId: string): Promise<VmRecord> {
    const record = typeof vmId === 'string' ? await this.#store.read(vmId) : undefined;
    if (!record) throw new DriverError('not_found', `no VM with id "${String(vmId)}" on host ${os.hostname()}`);
    return record;
  }

  async #checkNameFree(name: string, exceptId: string | undefined): Promise<void> {
    const other = (await this.#store.list()).find((r) => r.name === name && r.id !== exceptId);
    if (other) throw new DriverError('invalid_spec', `a VM named "${name}" already exists on host ${os.hostname()} (${other.id})`);
  }

  /**
   * Runs one operation: refuses after close, honours an abort before it starts, and rejects
   * with the signal's reason as soon as the operation's signal aborts (the caller's cancel or
   * deadline, or close). The work itself stops at its next check; every other failure becomes
   * a DriverError.
   */
  async #operate<T>(ctx: OperationContext, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.#closing.signal.throwIfAborted();
    ctx.signal.throwIfAborted();
    await this.#start();
    ctx.signal.throwIfAborted();
    // Not AbortSignal.any: on Node 20 it ties every operation's signal to the long-lived close signal.
    const op = new AbortController();
    const sources = [ctx.signal, this.#closing.signal];
    const onAbort = (event: Event): void => op.abort((event.target as AbortSignal).reason);
    for (const s of sources) s.addEventListener('abort', onAbort, { once: true });
    try {
      const work = fn(op.signal);
      const aborted = new Promise<never>((_, reject) => {
        if (op.signal.aborted) reject(op.signal.reason);
        op.signal.addEventListener('abort', () => reject(op.signal.reason), { once: true });
      });
      aborted.catch(() => undefined);
      work.catch(() => undefined); // it may settle after we gave up on it
      return await Promise.race([work, aborted]);
    } catch (err) {
      if (op.signal.aborted) throw op.signal.reason;
      throw this.#mapError(err, what);
    } finally {
      for (const s of sources) s.removeEventListener('abort', onAbort);
    }
  }

  #mapError(err: unknown, what: string): unknown {
    if (isDriverError(err)) return err;
    if (this.#closing.signal.aborted) return this.#closing.signal.reason;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new DriverError('no_space', `${what} on host ${os.hostname()}: out of disk space in ${this.#store.dir}`, { cause: err });
    return new DriverError('host_error', `${what} on host ${os.hostname()} failed: ${errorText(err)}`, { cause: err });
  }
}

function toVm(r: VmRecord, powerState: PowerState): Vm {
  return { id: r.id, name: r.name, powerState, vcpus: r.vcpus, memoryMB: r.memoryMB, diskGB: r.diskGB };
}

/**
 * QMP run states onto the port's: `running` is on; `shutdown` means the guest powered off and
 * QEMU is exiting (we never pass -no-shutdown), so off; every other state (paused by the
 * monitor, guest-suspended, prelaunch, panicked, I/O error, debug…) has a VM in memory whose
 * vCPUs do not run: suspended, which `on` resumes and `off` ends.
 */
function powerStateOf(status: string): PowerState {
  if (status === 'running') return 'on';
  if (status === 'shutdown') return 'off';
  return 'suspended';
}

function checkFits(name: string, vcpus: number, memoryMB: number): void {
  const { cores } = cpuInfo();
  const { totalMB } = memoryInfo();
  if (vcpus > cores) throw new DriverError('invalid_spec', `VM "${name}" asks for ${vcpus} vCPUs; host ${os.hostname()} has ${cores}`);
  if (memoryMB > totalMB) throw new DriverError('invalid_spec', `VM "${name}" asks for ${memoryMB} MB of memory; host ${os.hostname()} has ${totalMB} MB`);
}

async function checkBootImage(path: string): Promise<void> {
  if (!isAbsolute(path)) throw new DriverError('invalid_spec', `bootImage must be an absolute path on host ${os.hostname()}, got "${path}"`);
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) throw new DriverError('invalid_spec', `bootImage ${path} is not a file on host ${os.hostname()}`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
