import type { HostFacts, TaskOperation, Vm } from '@pallas/protocol';
import { AppError } from '../../errors.js';

/**
 * What the manager knows of a device from its last report, enough to refuse at once an
 * operation the device would refuse (docs/tasks.md#checks-before-queuing).
 */
export interface LastReport {
  facts: HostFacts | undefined;
  vms: Vm[] | undefined;
  /** When the device was last heard from (ISO), for the message. */
  at: string | null;
}

const FORCE = 'send it anyway with --force (REST: ?force=true) if the host has changed since';

function asOf(r: LastReport): string {
  return r.at ? `as of its last report, ${r.at}` : 'as of its last report';
}

function tooBig(what: string): AppError {
  return new AppError('exceeds_host', what);
}

/**
 * Throws a 422 `exceeds_host` (a limit: vCPUs, memory, disk, network) or a 409 `conflict` (a
 * VM name taken, a VM that is on) when the last report says the operation cannot succeed.
 * Says nothing when the device never reported, or for operations it does not check.
 */
export function checkAgainstLastReport(op: TaskOperation, r: LastReport): void {
  const f = r.facts;
  const vms = r.vms ?? [];
  const host = f ? `host ${f.hostname}` : 'the host';
  const fits = (name: string, vcpus: number | undefined, memoryMB: number | undefined): void => {
    if (!f) return;
    if (vcpus !== undefined && f.cpu.cores > 0 && vcpus > f.cpu.cores) {
      throw tooBig(`VM "${name}" asks for ${vcpus} vCPUs, but ${host} has ${f.cpu.cores} cores (${asOf(r)}); ${FORCE}`);
    }
    if (memoryMB !== undefined && f.memory.totalMB > 0 && memoryMB > f.memory.totalMB) {
      throw tooBig(`VM "${name}" asks for ${memoryMB} MiB of memory, but ${host} has ${f.memory.totalMB} MiB in all (${asOf(r)}); ${FORCE}`);
    }
  };
  const nameFree = (name: string, exceptId?: string): void => {
    const other = vms.find((v) => v.name === name && v.id !== exceptId);
    if (other) throw new AppError('conflict', `${host} already has a VM named "${name}" (${other.id}); choose another name, or ${FORCE}`);
  };
  const vmOf = (vmId: string): Vm | undefined => vms.find((v) => v.id === vmId);

  switch (op.kind) {
    case 'vm.create': {
      const s = op.spec;
      fits(s.name, s.vcpus, s.memoryMB);
      if (f && f.datastores.length > 0) {
        const most = Math.max(...f.datastores.map((d) => d.freeGB));
        if (s.diskGB > most) {
          throw tooBig(`VM "${s.name}" asks for a ${s.diskGB} GB disk, but the datastore of ${host} with the most free space has ${Math.floor(most * 10) / 10} GB free (${asOf(r)}); ${FORCE}`);
        }
      }
      if (f && s.network !== undefined && f.networks.length > 0 && !f.networks.includes(s.network)) {
        throw tooBig(`${host} has no network "${s.network}"; its networks are ${f.networks.map((n) => `"${n}"`).join(', ')} (${asOf(r)}); ${FORCE}`);
      }
      nameFree(s.name);
      return;
    }
    case 'vm.update': {
      const vm = vmOf(op.vmId);
      const name = op.patch.name ?? vm?.name ?? op.vmId;
      fits(name, op.patch.vcpus, op.patch.memoryMB);
      if (op.patch.name !== undefined) nameFree(op.patch.name, op.vmId);
      return;
    }
    case 'vm.deploy':
      if (op.name !== undefined) nameFree(op.name);
      return;
    case 'vm.delete': {
      const vm = vmOf(op.vmId);
      if (vm && vm.powerState !== 'off') {
        throw new AppError('conflict', `VM "${vm.name}" (${vm.id}) is ${vm.powerState}; power it off first (pallas vms power <device> ${vm.name} off), or ${FORCE}`);
      }
      return;
    }
    default:
      return;
  }
}
