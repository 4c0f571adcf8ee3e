import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PowerAction, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import { checkPowerAction, checkVmPatch, checkVmSpec } from '../../checks/index.js';
import type { OvaPackage } from '../../ova/ova-package.js';
import type { Driver, DriverHostFacts, OperationContext } from '../driver.js';
import { importOva } from './ova-import.js';
import { DriverError, DriverErrorCodes, isDriverError } from '../driver-error.js';
import { createSpec, reconfigureSpec } from './config-spec.js';
import { GB, VM_PATHS, listHostVms, readHost, readPlacement, readVm, type HostVm } from './inventory.js';
import { VsphereClient, VsphereFault, moRef, readMoRef, retrieveOne, taskRef, waitForTask, type MoRef } from './vsphere/index.js';

export interface EsxiDriverOptions {
  /** The host's address: `https://esxi.example` (SDK path `/sdk` implied). Required. */
  url: string;
  /** Required. */
  user: string;
  /** Required. In clear here: the agent's config decrypts it before it builds the driver. */
  password: string;
  /** SHA-256 fingerprint of the host's certificate (`AA:BB:…` or plain hex). Wins over `ca`. */
  thumbprint?: string;
  /** PEM text, or the path of a PEM file, of the CA (or self-signed certificate) of the host. */
  ca?: string;
  /** Skip certificate verification (logged as a warning). Default false. */
  insecure?: boolean;
  /** Deadline of one SOAP call, ms. Default 60,000. */
  callTimeoutMs?: number;
  /** How long `shutdown` waits for the guest to power off, ms. Default 120,000. */
  shutdownTimeoutMs?: number;
  /** Where the insecure warning goes. Default `process.emitWarning`. */
  warn?: (message: string) => void;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 120_000;

/**
 * The `esxi` adapter: drives one standalone ESXi host through the vSphere Web Services API.
 *
 * It keeps no state of its own beyond the SOAP session: every answer comes from the host, so
 * changes made outside Pallas (the host client, govc) show in the next `listVms`, and after the
 * host was unreachable (or the session expired) the next call simply logs in again.
 * Delete, power and reconfigure follow the sim driver's semantics (see driver.ts).
 */
export class EsxiDriver implements Driver {
  readonly kind = 'esxi' as const;
  readonly #options: Readonly<EsxiDriverOptions>;
  #client: VsphereClient | undefined;
  #closed = false;

  constructor(options: EsxiDriverOptions) {
    for (const key of ['url', 'user', 'password'] as const) {
      if (typeof options[key] !== 'string' || options[key] === '') {
        throw new DriverError(DriverErrorCodes.INVALID_SPEC, `esxi driver: option "${key}" is required`);
      }
    }
    this.#options = Object.freeze({ ...options });
  }

  /** The SOAP client, made on first use (the constructor opens nothing). */
  get client(): VsphereClient {
    if (this.#closed) throw new DriverError(DriverErrorCodes.UNAVAILABLE, 'esxi driver is closed');
    if (this.#client === undefined) {
      const o = this.#options;
      let ca = o.ca;
      if (ca !== undefined && !ca.includes('-----BEGIN')) {
        try {
          ca = readFileSync(ca, 'utf8');
        } catch (err) {
          throw new DriverError(DriverErrorCodes.INVALID_SPEC, `esxi driver: cannot read the CA file ${o.ca}: ${(err as Error).message}`);
        }
      }
      this.#client = new VsphereClient({
        url: o.url,
        user: o.user,
        password: o.password,
        thumbprint: o.thumbprint,
        ca,
        insecure: o.insecure,
        callTimeoutMs: o.callTimeoutMs,
        warn: o.warn ?? ((m) => process.emitWarning(m)),
      });
    }
    return this.#client;
  }

  async hostFacts(): Promise<DriverHostFacts> {
    return (await readHost(this.client)).facts;
  }

  async listVms(): Promise<Vm[]> {
    return (await listHostVms(this.client)).map((v) => v.vm);
  }

  async createVm(spec: VmSpec, ctx: OperationContext): Promise<Vm> {
    if (!checkVmSpec.check(spec)) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `invalid VM spec: ${await checkVmSpec.explain(spec)}`);
    const { signal } = ctx;
    signal.throwIfAborted();
    ctx.progress(0, 'reading the host');
    const client = this.client;
    const [host, vms, placement] = await Promise.all([readHost(client, signal), listHostVms(client, signal), readPlacement(client, signal)]);
    if (vms.some((v) => v.vm.name === spec.name)) {
      throw new DriverError(DriverErrorCodes.INVALID_SPEC, `a VM named "${spec.name}" already exists on the host`);
    }
    this.#checkFits(spec, host.maxVcpus, host.maxMemoryMB);
    let network = host.networks[0];
    if (spec.network !== undefined) {
      network = host.networks.find((n) => n.name === spec.network);
      if (network === undefined) {
        throw new DriverError(DriverErrorCodes.INVALID_SPEC, `the host has no network "${spec.network}"; networks: ${host.networks.map((n) => n.name).join(', ') || 'none'}`);
      }
    }
    // The datastore with the most free space, as the port says; vcsim does not refuse a disk
    // bigger than its datastore, a real host does (NoDiskSpace), so check here for both.
    const datastore = host.datastores.filter((d) => d.accessible).sort((a, b) => b.freeBytes - a.freeBytes)[0];
    const need = spec.diskGB * GB;
    if (datastore === undefined || datastore.freeBytes < need) {
      const free = datastore === undefined ? 'no datastore is accessible' : `the emptiest datastore, ${datastore.name}, has ${(Math.max(0, datastore.freeBytes) / GB).toFixed(1)} GB free`;
      throw new DriverError(DriverErrorCodes.NO_SPACE, `no space for a ${spec.diskGB} GB disk: ${free}`);
    }
    ctx.progress(5, `creating the VM on ${datastore.name}`);
    const res = await client.call(
      'CreateVM_Task',
      placement.vmFolder,
      { config: createSpec(spec, datastore, network), pool: placement.resourcePool, host: placement.host },
      { signal },
    );
    const result = await waitForTask(client, taskRef(res), `creating VM "${spec.name}"`, ctx, 5, 95);
    const ref = typeof result === 'object' ? readMoRef(result) : undefined;
    const created = ref !== undefined ? await this.#read(ref.value, signal) : (await listHostVms(client, signal)).find((v) => v.vm.name === spec.name);
    if (created === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, `the host created VM "${spec.name}" but does not list it`);
    ctx.progress(100);
    return created.vm;
  }

  /** OVA import through an HttpNfcLease (ova-import.ts), on the datastore with the most free space. */
  async deployVm(ova: OvaPackage, name: string, ctx: OperationContext): Promise<Vm> {
    const { signal } = ctx;
    signal.throwIfAborted();
    ctx.progress(0, 'reading the host');
    const client = this.client;
    const [host, vms, placement] = await Promise.all([readHost(client, signal), listHostVms(client, signal), readPlacement(client, signal)]);
    if (vms.some((v) => v.vm.name === name)) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `a VM named "${name}" already exists on the host`);
    this.#checkFits(ova.descriptor, host.maxVcpus, host.maxMemoryMB);
    const datastore = host.datastores.filter((d) => d.accessible).sort((a, b) => b.freeBytes - a.freeBytes)[0];
    // Thin disks: what the upload writes is about the size of the disk files, not their capacity.
    if (datastore === undefined || datastore.freeBytes < ova.totalFileBytes) {
      throw new DriverError(DriverErrorCodes.NO_SPACE, `no datastore has ${(ova.totalFileBytes / GB).toFixed(2)} GB free for the OVA's disks`);
    }
    const ref = await importOva(client, ova, name, { placement, datastore, networks: host.networks }, new URL(this.#options.url), ctx);
    const made = await this.#read(ref.value, signal);
    ctx.progress(100);
    return made.vm;
  }

  async powerVm(vmId: string, action: PowerAction, ctx: OperationContext): Promise<Vm> {
    if (!checkPowerAction.check(action)) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `unknown power action "${String(action)}"; valid: on, off, reset, shutdown`);
    const { signal } = ctx;
    signal.throwIfAborted();
    const current = await this.#read(vmId, signal);
    const state = current.vm.powerState;
    const name = current.vm.name;
    switch (action) {
      case 'on':
        if (state === 'on') return current.vm;
        await this.#task('PowerOnVM_Task', current.ref, `powering on VM "${name}"`, ctx);
        break;
      case 'off':
        if (state === 'off') return current.vm;
        await this.#task('PowerOffVM_Task', current.ref, `powering off VM "${name}"`, ctx);
        break;
      case 'reset':
        if (state !== 'on') throw new DriverError(DriverErrorCodes.INVALID_STATE, `cannot reset VM "${name}": it is ${state} (reset needs a running VM)`);
        await this.#task('ResetVM_Task', current.ref, `resetting VM "${name}"`, ctx);
        break;
      case 'shutdown':
        if (state === 'off') return current.vm;
        if (state === 'suspended') throw new DriverError(DriverErrorCodes.INVALID_STATE, `cannot shut down VM "${name}": it is suspended (no running guest to ask); power it on or off`);
        await this.#shutdown(current, ctx);
        break;
    }
    ctx.progress(100);
    return (await this.#read(vmId, signal)).vm;
  }

  async updateVm(vmId: string, patch: VmPatch, ctx: OperationContext): Promise<Vm> {
    if (!checkVmPatch.check(patch)) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `invalid VM patch: ${await checkVmPatch.explain(patch)}`);
    const { signal } = ctx;
    signal.throwIfAborted();
    const client = this.client;
    const current = await this.#read(vmId, signal);
    const vm = current.vm;
    const change: VmPatch = {};
    if (patch.name !== undefined && patch.name !== vm.name) change.name = patch.name;
    if (patch.vcpus !== undefined && patch.vcpus !== vm.vcpus) change.vcpus = patch.vcpus;
    if (patch.memoryMB !== undefined && patch.memoryMB !== vm.memoryMB) change.memoryMB = patch.memoryMB;
    if (Object.keys(change).length === 0) return vm;
    if ((change.vcpus !== undefined || change.memoryMB !== undefined) && vm.powerState !== 'off') {
      throw new DriverError(DriverErrorCodes.INVALID_STATE, `cannot change the vCPUs or memory of VM "${vm.name}" while it is ${vm.powerState}: power it off first`);
    }
    if (change.name !== undefined) {
      const others = await listHostVms(client, signal);
      if (others.some((o) => o.vm.name === change.name && o.ref.value !== vmId)) {
        throw new DriverError(DriverErrorCodes.INVALID_SPEC, `cannot rename VM "${vm.name}": another VM is named "${change.name}"`);
      }
    }
    if (change.vcpus !== undefined || change.memoryMB !== undefined) {
      const host = await readHost(client, signal);
      this.#checkFits({ vcpus: change.vcpus ?? vm.vcpus, memoryMB: change.memoryMB ?? vm.memoryMB }, host.maxVcpus, host.maxMemoryMB);
    }
    await this.#task('ReconfigVM_Task', current.ref, `reconfiguring VM "${vm.name}"`, ctx, { spec: reconfigureSpec(change) });
    ctx.progress(100);
    return (await this.#read(vmId, signal)).vm;
  }

  async deleteVm(vmId: string, ctx: OperationContext): Promise<void> {
    const { signal } = ctx;
    signal.throwIfAborted();
    const current = await this.#read(vmId, signal);
    if (current.vm.powerState !== 'off') {
      throw new DriverError(DriverErrorCodes.INVALID_STATE, `cannot delete VM "${current.vm.name}": it is ${current.vm.powerState}; power it off first`);
    }
    await this.#task('Destroy_Task', current.ref, `deleting VM "${current.vm.name}"`, ctx);
    ctx.progress(100);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client?.close();
  }

  /** Calls a `…_Task` method on a VM and waits for it, progress 0–95. */
  async #task(method: string, vm: MoRef, what: string, ctx: OperationContext, body: Record<string, unknown> = {}): Promise<void> {
    const client = this.client;
    const res = await this.#onVm(vm.value, () => client.call(method, vm, body, { signal: ctx.signal }));
    await waitForTask(client, taskRef(res), what, ctx, 0, 95);
  }

  /** ShutdownGuest returns at once; the VM is off when the guest is done. Needs VMware Tools. */
  async #shutdown(current: HostVm, ctx: OperationContext): Promise<void> {
    const name = current.vm.name;
    if (!current.toolsRunning) {
      throw new DriverError(DriverErrorCodes.INVALID_STATE, `cannot shut down VM "${name}" cleanly: VMware Tools are not running in its guest; use power off`);
    }
    await this.#onVm(current.ref.value, () => this.client.call('ShutdownGuest', current.ref, {}, { signal: ctx.signal }));
    ctx.progress(10, `waiting for the guest of "${name}" to shut down`);
    const deadline = Date.now() + (this.#options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
    for (let delay = 200; ; delay = Math.min(2_000, delay * 2)) {
      const now = await this.#read(current.ref.value, ctx.signal);
      if (now.vm.powerState === 'off') return;
      if (Date.now() > deadline) {
        throw new DriverError(DriverErrorCodes.HOST_ERROR, `VM "${name}" did not shut down within ${Math.round((this.#options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS) / 1000)} s; it is still on`);
      }
      await sleep(delay, undefined, { signal: ctx.signal });
    }
  }

  /** Reads one VM; `not_found` when the host has no VM with that id. */
  async #read(vmId: string, signal: AbortSignal): Promise<HostVm> {
    const found = await this.#onVm(vmId, () => retrieveOne(this.client, moRef('VirtualMachine', vmId), VM_PATHS, { signal }));
    const vm = found === undefined ? undefined : readVm(found);
    if (vm === undefined || vm.template) throw notFound(vmId);
    return vm;
  }

  /** Runs a call on a VM, turning the host's ManagedObjectNotFound into a clear `not_found`. */
  async #onVm<T>(vmId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isDriverError(err, DriverErrorCodes.NOT_FOUND) && err.cause instanceof VsphereFault) throw notFound(vmId, err.cause);
      throw err;
    }
  }

  #checkFits(want: { vcpus: number; memoryMB: number }, maxVcpus: number, maxMemoryMB: number): void {
    if (maxVcpus > 0 && want.vcpus > maxVcpus) {
      throw new DriverError(DriverErrorCodes.INVALID_SPEC, `${want.vcpus} vCPUs is more than the host has (${maxVcpus} logical CPUs)`);
    }
    if (maxMemoryMB > 0 && want.memoryMB > maxMemoryMB) {
      throw new DriverError(DriverErrorCodes.INVALID_SPEC, `${want.memoryMB} MB of memory is more than the host has (${maxMemoryMB} MB)`);
    }
  }
}

function notFound(vmId: string, cause?: unknown): DriverError {
  return new DriverError(DriverErrorCodes.NOT_FOUND, `no VM with id "${vmId}" on the host`, cause === undefined ? undefined : { cause });
}
