import type { PowerState, Vm } from '@pallas/protocol';
import type { DriverHostFacts } from '../driver.js';
import { child, list, num, readMoRef, retrieveAll, text, xsiType, type MoRef, type ObjectContent, type VsphereClient, type XmlNode } from './vsphere/index.js';

/** The VM properties the driver reads; one property-collector round trip for all VMs. */
export const VM_PATHS = [
  'name',
  'summary.runtime.powerState',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'config.hardware.device',
  'config.guestFullName',
  'config.template',
  'guest.toolsRunningStatus',
];

const POWER_STATES: Record<string, PowerState> = { poweredOn: 'on', poweredOff: 'off', suspended: 'suspended' };

/** Bytes of a decimal GB: the unit of `Vm.diskGB` and `VmSpec.diskGB`. */
export const GB = 1e9;

/** A VM as the host has it, with what the driver needs beyond the `Vm`. */
export interface HostVm {
  ref: MoRef;
  vm: Vm;
  template: boolean;
  toolsRunning: boolean;
}

export function readVm(o: ObjectContent): HostVm | undefined {
  const p = o.props;
  const name = text(p.get('name'));
  // A VM being created or half-registered has no config yet: skip it until it has.
  const vcpus = num(p.get('config.hardware.numCPU'));
  const memoryMB = num(p.get('config.hardware.memoryMB'));
  if (name === undefined || name === '' || vcpus === undefined || memoryMB === undefined) return undefined;
  let diskBytes = 0;
  const devices = p.get('config.hardware.device');
  for (const d of list(devices, 'VirtualDevice')) {
    if (xsiType(d) !== 'VirtualDisk') continue;
    diskBytes += num(d, 'capacityInBytes') ?? (num(d, 'capacityInKB') ?? 0) * 1024;
  }
  const vm: Vm = {
    id: o.obj.value,
    name: name.slice(0, 255),
    powerState: POWER_STATES[text(p.get('summary.runtime.powerState')) ?? ''] ?? 'off',
    vcpus: Math.max(1, vcpus),
    memoryMB: Math.max(1, memoryMB),
    // Three decimals: a disk made as N GB reads back as N, although the host counts in KiB.
    diskGB: Math.round((diskBytes / GB) * 1000) / 1000,
  };
  const guestOs = text(p.get('config.guestFullName'));
  if (guestOs !== undefined && guestOs !== '') vm.guestOs = guestOs.slice(0, 255);
  return {
    ref: o.obj,
    vm,
    template: text(p.get('config.template')) === 'true',
    toolsRunning: text(p.get('guest.toolsRunningStatus')) === 'guestToolsRunning',
  };
}

/** VMs in creation order: the host numbers its VM ids upward (`12`, or `vm-12` on vcsim). */
export function byCreation(a: HostVm, b: HostVm): number {
  return idNumber(a.ref.value) - idNumber(b.ref.value) || a.ref.value.localeCompare(b.ref.value);
}
function idNumber(id: string): number {
  const m = /(\d+)$/.exec(id);
  return m === null ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

export async function listHostVms(client: VsphereClient, signal?: AbortSignal): Promise<HostVm[]> {
  const { rootFolder } = await client.serviceContent({ signal });
  const objects = await retrieveAll(client, rootFolder, 'VirtualMachine', VM_PATHS, { signal });
  return objects
    .map(readVm)
    .filter((v): v is HostVm => v !== undefined && !v.template)
    .sort(byCreation);
}

export interface HostDatastore {
  ref: MoRef;
  name: string;
  capacityBytes: number;
  freeBytes: number;
  accessible: boolean;
}

export interface HostNetwork {
  ref: MoRef;
  name: string;
}

/** The places a new VM goes: the datacenter's VM folder and the host's root resource pool. */
export interface Placement {
  vmFolder: MoRef;
  resourcePool: MoRef;
  host: MoRef | undefined;
}

export interface HostInventory {
  facts: DriverHostFacts;
  datastores: HostDatastore[];
  networks: HostNetwork[];
  /** Logical CPUs and memory of the host: the most one VM may ask for. */
  maxVcpus: number;
  maxMemoryMB: number;
}

const HOST_PATHS = ['name', 'summary.hardware', 'summary.quickStats', 'summary.config.product', 'config.network.dnsConfig'];

export async function readHost(client: VsphereClient, signal?: AbortSignal): Promise<HostInventory> {
  const content = await client.serviceContent({ signal });
  const root = content.rootFolder;
  const [hosts, dss, nets] = await Promise.all([
    retrieveAll(client, root, 'HostSystem', HOST_PATHS, { signal }),
    retrieveAll(client, root, 'Datastore', ['summary'], { signal }),
    retrieveAll(client, root, 'Network', ['name'], { signal }),
  ]);
  const host = hosts[0]?.props;
  const hw = asNode(host?.get('summary.hardware'));
  const stats = asNode(host?.get('summary.quickStats'));
  const product = asNode(host?.get('summary.config.product'));
  const dns = asNode(host?.get('config.network.dnsConfig'));
  const datastores = dss.map((d): HostDatastore => {
    const s = asNode(d.props.get('summary'));
    return {
      ref: d.obj,
      name: text(s, 'name') ?? d.obj.value,
      capacityBytes: num(s, 'capacity') ?? 0,
      freeBytes: num(s, 'freeSpace') ?? 0,
      accessible: text(s, 'accessible') !== 'false',
    };
  });
  const networks = nets.map((n): HostNetwork => ({ ref: n.obj, name: text(n.props.get('name')) ?? n.obj.value }));
  const memoryBytes = num(hw, 'memorySize') ?? 0;
  const cores = num(hw, 'numCpuCores') ?? 0;
  const threads = num(hw, 'numCpuThreads') ?? cores;
  const dnsName = [text(dns, 'hostName'), text(dns, 'domainName')].filter((s) => s !== undefined && s !== '').join('.');
  const vendorModel = [text(hw, 'vendor'), text(hw, 'model')].filter((s) => s !== undefined && s !== '').join(' ');
  const facts: DriverHostFacts = {
    hostname: (dnsName || text(host?.get('name')) || client.host.replace(/:\d+$/, '')).slice(0, 255),
    hypervisor: { kind: 'esxi', version: (text(product, 'version') || content.version).slice(0, 64) },
    cpu: {
      model: (text(hw, 'cpuModel') ?? '').slice(0, 255),
      cores,
    },
    memory: { totalMB: Math.floor(memoryBytes / 1_048_576) },
    datastores: datastores.map((d) => ({
      name: d.name.slice(0, 255),
      capacityGB: round2(d.capacityBytes / GB),
      freeGB: round2(Math.max(0, d.freeBytes) / GB),
    })),
    networks: networks.map((n) => n.name.slice(0, 255)),
    uptimeSec: Math.max(0, Math.floor(num(stats, 'uptime') ?? 0)),
  };
  const build = text(product, 'build') || content.build;
  if (build !== '') facts.hypervisor.build = build.slice(0, 64);
  if (vendorModel !== '') facts.model = vendorModel.slice(0, 255);
  const mhz = num(hw, 'cpuMhz');
  if (mhz !== undefined) facts.cpu.mhz = mhz;
  const usedMhz = num(stats, 'overallCpuUsage');
  if (usedMhz !== undefined && mhz !== undefined && cores > 0) facts.cpu.usagePct = Math.min(100, round2((usedMhz / (mhz * cores)) * 100));
  const usedMB = num(stats, 'overallMemoryUsage');
  if (usedMB !== undefined) facts.memory.usedMB = Math.max(0, Math.floor(usedMB));
  return { facts, datastores, networks, maxVcpus: threads, maxMemoryMB: facts.memory.totalMB };
}

export async function readPlacement(client: VsphereClient, signal?: AbortSignal): Promise<Placement> {
  const { rootFolder } = await client.serviceContent({ signal });
  const [dcs, crs] = await Promise.all([
    retrieveAll(client, rootFolder, 'Datacenter', ['vmFolder'], { signal }),
    retrieveAll(client, rootFolder, 'ComputeResource', ['resourcePool', 'host'], { signal }),
  ]);
  const vmFolder = readMoRef(dcs[0]?.props.get('vmFolder'));
  const resourcePool = readMoRef(crs[0]?.props.get('resourcePool'));
  const host = readMoRef(list(crs[0]?.props.get('host'), 'ManagedObjectReference')[0]);
  if (vmFolder === undefined || resourcePool === undefined) throw new Error('the host has no VM folder or resource pool');
  return { vmFolder, resourcePool, host };
}

function asNode(v: XmlNode | string | undefined): XmlNode | undefined {
  return typeof v === 'object' ? v : undefined;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
