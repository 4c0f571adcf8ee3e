import type { HypervisorKind } from '@pallas/protocol';

/**
 * Why a driver has no `applyPatch`, in the words a `device.patch` task fails with
 * (`unsupported`). One place, so the qemu and esxi adapters need no stub method.
 */
const WHY_NOT: Partial<Record<HypervisorKind, string>> = {
  qemu: "the qemu driver cannot patch its host: QEMU's host is the Linux machine the agent runs on, which its own package manager patches",
  esxi:
    'the esxi driver cannot patch its host yet: patching ESXi needs maintenance mode (every VM stopped or moved) and a reboot, which Pallas does not orchestrate, and the vSphere simulator has no HostPatchManager to test it against',
};

export function patchUnsupportedReason(kind: HypervisorKind): string {
  return WHY_NOT[kind] ?? `the ${kind} driver cannot patch its host`;
}
