import type { VmPatch, VmSpec } from '@pallas/protocol';
import type { HostDatastore, HostNetwork } from './inventory.js';

// Temporary device keys of a new VM's devices: negative, so the host assigns the real ones.
const SCSI_KEY = -100;
const DISK_KEY = -101;
const NIC_KEY = -102;

/** Disk size in KiB for `diskGB` decimal GB, rounded up: the host counts whole KiB. */
export function diskKiB(diskGB: number): number {
  return Math.ceil((diskGB * 1e9) / 1024);
}

/**
 * The `VirtualMachineConfigSpec` of a new VM: the spec's vCPUs and memory, an LSI Logic SAS
 * controller with one thin disk of `diskGB` on `datastore`, and a VMXNET3 NIC on `network`.
 * The guest type is "other 64-bit": Pallas does not know the OS an image will bring.
 * Field order follows the vSphere schema (a sequence): a strict host rejects it otherwise.
 */
export function createSpec(spec: VmSpec, datastore: HostDatastore, network: HostNetwork | undefined): Record<string, unknown> {
  const kib = diskKiB(spec.diskGB);
  const deviceChange: Record<string, unknown>[] = [
    {
      operation: 'add',
      device: { $type: 'VirtualLsiLogicSASController', key: SCSI_KEY, busNumber: 0, sharedBus: 'noSharing' },
    },
    {
      operation: 'add',
      fileOperation: 'create',
      device: {
        $type: 'VirtualDisk',
        key: DISK_KEY,
        backing: { $type: 'VirtualDiskFlatVer2BackingInfo', fileName: `[${datastore.name}]`, diskMode: 'persistent', thinProvisioned: true },
        controllerKey: SCSI_KEY,
        unitNumber: 0,
        capacityInKB: kib,
        capacityInBytes: kib * 1024,
      },
    },
  ];
  if (network !== undefined) {
    deviceChange.push({
      operation: 'add',
      device: {
        $type: 'VirtualVmxnet3',
        key: NIC_KEY,
        backing: { $type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: network.name, network: network.ref },
        connectable: { startConnected: true, allowGuestControl: true, connected: false },
        addressType: 'generated',
      },
    });
  }
  return {
    $type: 'VirtualMachineConfigSpec',
    name: spec.name,
    guestId: 'otherGuest64',
    files: { vmPathName: `[${datastore.name}]` },
    numCPUs: spec.vcpus,
    memoryMB: spec.memoryMB,
    deviceChange,
  };
}

/** The `VirtualMachineConfigSpec` of a patch: only the fields that change. */
export function reconfigureSpec(patch: VmPatch): Record<string, unknown> {
  return {
    $type: 'VirtualMachineConfigSpec',
    name: patch.name,
    numCPUs: patch.vcpus,
    memoryMB: patch.memoryMB,
  };
}
