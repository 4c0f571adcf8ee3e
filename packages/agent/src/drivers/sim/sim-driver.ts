import type { Datastore, PowerState, Vm } from '@pallas/protocol';
import type { Driver, DriverHostFacts } from '../driver.js';
import { intBetween, pick, seededRandom } from './random.js';

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
  /** Everything above that is not given is derived from it. Default 1. */
  seed?: number;
}

const VM_ROLES = ['pos', 'nvr', 'router', 'iot-gw', 'web', 'db', 'kiosk', 'scada', 'cache', 'vpn'] as const;
const GUESTS = ['ubuntu64Guest', 'debian12_64Guest', 'windows2019srv_64Guest', 'rhel9_64Guest', 'other5xLinux64Guest'] as const;
const MODELS = ['Pallas Sim Edge 100', 'Pallas Sim Edge 300', 'Pallas Sim Edge 500'] as const;

/**
 * An in-memory hypervisor for demos, the fleet simulator and load tests. Every fact derives
 * from the seed, except uptime, which counts from a seeded boot time in the past.
 */
export class SimDriver implements Driver {
  readonly kind = 'sim' as const;
  readonly #facts: Readonly<Omit<DriverHostFacts, 'uptimeSec'>>;
  readonly #bootedAt: number;
  readonly #vms: Vm[];
  #closed = false;

  constructor(options: SimDriverOptions = {}) {
    const seed = options.seed ?? 1;
    const random = seededRandom(seed);
    const cores = options.cpuCores ?? pick(random, [4, 8, 16]);
    const memoryMB = options.memoryMB ?? pick(random, [16, 32, 64]) * 1024;
    const vmCount = options.vmCount ?? 3;

    this.#vms = [];
    for (let i = 0; i < vmCount; i++) {
      // The first two VMs are on and off, so that every host shows a mix of states.
      const powerState: PowerState = i === 0 ? 'on' : i === 1 ? 'off' : pick(random, ['on', 'on', 'off', 'suspended']);
      this.#vms.push({
        id: `vm-${100 + i}`,
        name: `${pick(random, VM_ROLES)}-${String(i + 1).padStart(2, '0')}`,
        powerState,
        vcpus: pick(random, [1, 2, 2, 4]),
        memoryMB: pick(random, [1024, 2048, 4096, 8192]),
        diskGB: pick(random, [16, 32, 64, 128]),
        guestOs: pick(random, GUESTS),
      });
    }

    const diskUsed = this.#vms.reduce((sum, vm) => sum + vm.diskGB, 0);
    const datastores: Datastore[] = (options.datastores ?? [{ name: 'datastore1', capacityGB: intBetween(random, 5, 20) * 100 }]).map(
      (d, i) => ({
        name: d.name,
        capacityGB: d.capacityGB,
        // All VM disks sit on the first datastore.
        freeGB: d.freeGB ?? Math.max(0, d.capacityGB - (i === 0 ? diskUsed : 0)),
      }),
    );
    const on = this.#vms.filter((vm) => vm.powerState === 'on');
    const vcpusOn = on.reduce((sum, vm) => sum + vm.vcpus, 0);
    const memOn = on.reduce((sum, vm) => sum + vm.memoryMB, 0);

    this.#facts = Object.freeze({
      hostname: options.hostname ?? `sim-${String(seed).padStart(4, '0')}`,
      hypervisor: { kind: 'sim' as const, version: '1.0', build: String(intBetween(random, 10_000, 99_999)) },
      model: pick(random, MODELS),
      cpu: {
        model: 'Pallas Sim vCPU @ 2.40GHz',
        cores,
        mhz: 2400,
        usagePct: Math.min(100, Math.round((5 + (vcpusOn / Math.max(1, cores)) * 40) * 10) / 10),
      },
      memory: { totalMB: memoryMB, usedMB: Math.min(memoryMB, 1024 + memOn) },
      datastores,
      networks: ['Management Network', 'VM Network'],
    });
    this.#bootedAt = Date.now() - intBetween(random, 3600, 30 * 86400) * 1000;
  }

  async hostFacts(): Promise<DriverHostFacts> {
    this.#assertOpen();
    return structuredClone({ ...this.#facts, uptimeSec: Math.floor((Date.now() - this.#bootedAt) / 1000) });
  }

  async listVms(): Promise<Vm[]> {
    this.#assertOpen();
    return structuredClone(this.#vms);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('sim driver is closed');
  }
}
