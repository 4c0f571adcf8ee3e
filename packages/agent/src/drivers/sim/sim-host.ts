import type { PowerAction, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import { checkVm } from '../../checks/index.js';
import type { DriverHostFacts } from '../driver.js';
import { DriverError } from '../driver-error.js';

export interface SimHostInit {
  hostname: string;
  hypervisor: DriverHostFacts['hypervisor'];
  model: string;
  cores: number;
  memoryMB: number;
  /** `freeGB`, if given, is the free space with the initial VMs, which all sit on the first one. */
  datastores: ReadonlyArray<{ name: string; capacityGB: number; freeGB?: number }>;
  networks: string[];
  vms: Vm[];
  /** Next VM id number (`vm-{n}`). */
  nextId: number;
}

/** What a plan returns: the change to make, or `noop` if the goal already holds. */
export interface Plan<T> {
  apply: () => T;
  noop: boolean;
}

/** Memory the hypervisor keeps for itself; VMs power on only into the rest. */
const HYPERVISOR_RESERVED_MB = 1024;

/** A VM is flat (strings and numbers), so a spread is a full copy; structuredClone cost more than the rest of a status report. */
const copyVm = (vm: Vm): Vm => ({ ...vm });

/**
 * The sim host's state and rules (names, power states, capacity), without time: `SimDriver`
 * adds latency, progress, aborts and failures. Plans check and throw `DriverError`s; their
 * `apply` makes the change and returns a copy of the VM.
 */
export class SimHost {
  readonly #init: Omit<SimHostInit, 'vms' | 'nextId'>;
  /** Free space per datastore were it empty: free space is this minus the disks placed on it. */
  readonly #emptyFreeGB: number[];
  #vms: Vm[];
  /** VM id → index of the datastore holding its disk. */
  readonly #placement = new Map<string, number>();
  #nextId: number;

  constructor(init: SimHostInit) {
    const { vms, nextId, ...rest } = init;
    this.#init = rest;
    this.#vms = vms.map(copyVm);
    this.#nextId = nextId;
    const diskUsed = vms.reduce((sum, vm) => sum + vm.diskGB, 0);
    this.#emptyFreeGB = init.datastores.map((d, i) => {
      const initialUsed = i === 0 ? diskUsed : 0;
      return d.freeGB === undefined ? d.capacityGB : d.freeGB + initialUsed;
    });
    for (const vm of vms) this.#placement.set(vm.id, 0);
  }

  facts(): Omit<DriverHostFacts, 'uptimeSec'> {
    const on = this.#vms.filter((vm) => vm.powerState === 'on');
    const vcpusOn = on.reduce((sum, vm) => sum + vm.vcpus, 0);
    const free = this.#freeGB();
    return {
      hostname: this.#init.hostname,
      hypervisor: this.#init.hypervisor,
      model: this.#init.model,
      cpu: {
        model: 'Pallas Sim vCPU @ 2.40GHz',
        cores: this.#init.cores,
        mhz: 2400,
        usagePct: Math.min(100, Math.round((5 + (vcpusOn / Math.max(1, this.#init.cores)) * 40) * 10) / 10),
      },
      memory: { totalMB: this.#init.memoryMB, usedMB: Math.min(this.#init.memoryMB, this.#memoryUsedMB()) },
      datastores: this.#init.datastores.map((d, i) => ({ name: d.name, capacityGB: d.capacityGB, freeGB: Math.max(0, free[i]!) })),
      networks: [...this.#init.networks],
    };
  }

  vms(): Vm[] {
    return this.#vms.map(copyVm);
  }

  planCreate(spec: VmSpec): Plan<Vm> {
    this.#checkNameFree(spec.name, undefined);
    this.#checkFits(spec);
    if (spec.network !== undefined && !this.#init.networks.includes(spec.network)) {
      throw new DriverError('invalid_spec', `no network "${spec.network}" on host ${this.#init.hostname}; networks: ${this.#init.networks.join(', ')}`);
    }
    const free = this.#freeGB();
    const best = free.reduce((bi, f, i) => (f > free[bi]! ? i : bi), 0);
    if (free.length === 0 || free[best]! < spec.diskGB) {
      throw new DriverError('no_space', `no datastore on host ${this.#init.hostname} has ${spec.diskGB} GB free for VM "${spec.name}" (most free: ${Math.max(0, free[best] ?? 0)} GB)`);
    }
    return {
      noop: false,
      apply: () => {
        const vm: Vm = { id: `vm-${this.#nextId++}`, name: spec.name, powerState: 'off', vcpus: spec.vcpus, memoryMB: spec.memoryMB, diskGB: spec.diskGB };
        this.#vms.push(vm);
        this.#placement.set(vm.id, best);
        return copyVm(vm);
      },
    };
  }

  planPower(vmId: string, action: PowerAction): Plan<Vm> {
    const vm = this.#find(vmId);
    const to = (powerState: Vm['powerState'], noop = false): Plan<Vm> => ({
      noop,
      apply: () => {
        vm.powerState = powerState;
        return copyVm(vm);
      },
    });
    const refuse = (why: string): never => {
      throw new DriverError('invalid_state', `cannot ${action} VM "${vm.name}" (${vm.id}): ${why}`);
    };
    switch (action) {
      case 'on':
        if (vm.powerState === 'on') return to('on', true);
        if (this.#memoryUsedMB() + vm.memoryMB > this.#init.memoryMB) {
          throw new DriverError('no_space', `not enough free memory on host ${this.#init.hostname} to power on VM "${vm.name}" (${vm.id}): needs ${vm.memoryMB} MB, ${Math.max(0, this.#init.memoryMB - this.#memoryUsedMB())} MB free`);
        }
        return to('on');
      case 'off':
        return to('off', vm.powerState === 'off');
      case 'reset':
        return vm.powerState === 'on' ? to('on') : refuse(`it is ${vm.powerState}`);
      case 'shutdown':
        if (vm.powerState === 'off') return to('off', true);
        return vm.powerState === 'on' ? to('off') : refuse('it is suspended; power it on first, or power it off');
    }
  }

  planUpdate(vmId: string, patch: VmPatch): Plan<Vm> {
    const vm = this.#find(vmId);
    const rename = patch.name !== undefined && patch.name !== vm.name;
    const reshape = (patch.vcpus !== undefined && patch.vcpus !== vm.vcpus) || (patch.memoryMB !== undefined && patch.memoryMB !== vm.memoryMB);
    if (rename) this.#checkNameFree(patch.name!, vm.id);
    if (reshape) {
      this.#checkFits({ vcpus: patch.vcpus ?? vm.vcpus, memoryMB: patch.memoryMB ?? vm.memoryMB, name: patch.name ?? vm.name });
      if (vm.powerState !== 'off') {
        throw new DriverError('invalid_state', `cannot change vCPUs or memory of VM "${vm.name}" (${vm.id}) while it is ${vm.powerState}; power it off first`);
      }
    }
    return {
      noop: !rename && !reshape,
      apply: () => {
        if (patch.name !== undefined) vm.name = patch.name;
        if (patch.vcpus !== undefined) vm.vcpus = patch.vcpus;
        if (patch.memoryMB !== undefined) vm.memoryMB = patch.memoryMB;
        return copyVm(vm);
      },
    };
  }

  planDelete(vmId: string): Plan<void> {
    const vm = this.#find(vmId);
    if (vm.powerState !== 'off') {
      throw new DriverError('invalid_state', `cannot delete VM "${vm.name}" (${vm.id}) while it is ${vm.powerState}; power it off first`);
    }
    return {
      noop: false,
      apply: () => {
        this.#vms = this.#vms.filter((v) => v !== vm);
        this.#placement.delete(vm.id);
      },
    };
  }

  /** The state that outlives the process (see SimStateFile). */
  snapshot(): { vms: Vm[]; nextId: number; placement: Record<string, number> } {
    return { vms: this.#vms.map(copyVm), nextId: this.#nextId, placement: Object.fromEntries(this.#placement) };
  }

  restore(state: { vms: Vm[]; nextId: number; placement: Record<string, number> }): void {
    this.#placement.clear();
    for (const [id, i] of Object.entries(state.placement)) this.#placement.set(id, i);
    this.#nextId = state.nextId;
    this.replaceVms(state.vms);
  }

  /** Replaces the VM list after a change made "by hand on the host". */
  replaceVms(vms: Vm[]): void {
    const ids = new Set<string>();
    for (const vm of vms) {
      // Synchronous, so without the schema's wording of the problem (checkVm.explain loads it).
      if (!checkVm.check(vm)) throw new TypeError(`simulated host change: invalid VM: ${JSON.stringify(vm)}`);
      if (ids.has(vm.id)) throw new TypeError(`simulated host change: duplicate VM id ${vm.id}`);
      ids.add(vm.id);
    }
    this.#vms = vms.map(copyVm);
    for (const id of [...this.#placement.keys()]) if (!ids.has(id)) this.#placement.delete(id);
    for (const vm of this.#vms) {
      if (this.#placement.has(vm.id)) continue;
      const free = this.#freeGB();
      this.#placement.set(vm.id, free.reduce((bi, f, i) => (f > free[bi]! ? i : bi), 0));
      // Keep ids Pallas gives out clear of ids the host gave out.
      const n = /^vm-(\d+)$/.exec(vm.id)?.[1];
      if (n !== undefined) this.#nextId = Math.max(this.#nextId, Number(n) + 1);
    }
  }

  #find(vmId: string): Vm {
    const vm = this.#vms.find((v) => v.id === vmId);
    if (!vm) throw new DriverError('not_found', `no VM with id "${String(vmId)}" on host ${this.#init.hostname}`);
    return vm;
  }

  #checkNameFree(name: string, exceptId: string | undefined): void {
    const other = this.#vms.find((v) => v.name === name && v.id !== exceptId);
    if (other) throw new DriverError('invalid_spec', `a VM named "${name}" already exists on host ${this.#init.hostname} (${other.id})`);
  }

  #checkFits(shape: { name: string; vcpus: number; memoryMB: number }): void {
    if (shape.vcpus > this.#init.cores) {
      throw new DriverError('invalid_spec', `VM "${shape.name}" asks for ${shape.vcpus} vCPUs; host ${this.#init.hostname} has ${this.#init.cores} cores`);
    }
    if (shape.memoryMB > this.#init.memoryMB - HYPERVISOR_RESERVED_MB) {
      throw new DriverError('invalid_spec', `VM "${shape.name}" asks for ${shape.memoryMB} MB of memory; host ${this.#init.hostname} has ${this.#init.memoryMB - HYPERVISOR_RESERVED_MB} MB for VMs`);
    }
  }

  /** Suspended VMs keep their memory on disk, so only running ones count. */
  #memoryUsedMB(): number {
    return HYPERVISOR_RESERVED_MB + this.#vms.reduce((sum, vm) => sum + (vm.powerState === 'on' ? vm.memoryMB : 0), 0);
  }

  #freeGB(): number[] {
    const free = [...this.#emptyFreeGB];
    for (const vm of this.#vms) {
      const i = this.#placement.get(vm.id) ?? 0;
      if (i < free.length) free[i] = free[i]! - vm.diskGB;
    }
    return free;
  }
}
