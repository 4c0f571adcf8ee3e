import type { OvaPackage } from '../ova/ova-package.js';
import type { ArtifactManifest, HostFacts, HypervisorKind, PowerAction, Vm, VmPatch, VmSpec } from '@pallas/protocol';

/** Host facts as a driver knows them; the agent adds its own version and uptime. */
export type DriverHostFacts = Omit<HostFacts, 'agentVersion' | 'agentUptimeSec'>;

/**
 * What a long operation gets from its caller (the task runner): a way to stop it and a way to
 * report how far it got.
 */
export interface OperationContext {
  /**
   * Cancellation or deadline (`AbortSignal.timeout`). Once it aborts, the driver stops as soon
   * as it safely can and rejects with `signal.reason` as is (so the caller tells a cancel from
   * a timeout). An operation aborted before it started has no effect; one aborted midway may
   * have taken effect (on a real hypervisor the last step cannot always be called back): the
   * caller re-reads the inventory to find out.
   */
  readonly signal: AbortSignal;
  /**
   * Progress, `pct` from 0 to 100, never decreasing within one call; `message` says what the
   * driver is doing ("allocating disk"). May be called any number of times, including never
   * for operations that finish at once; cheap for the caller (it coalesces before sending).
   */
  progress(pct: number, message?: string): void;
}

/**
 * The hypervisor port: everything the agent asks of the machine it manages goes through it.
 *
 * Adapters live in a folder each (`sim/`, `qemu/`, `esxi/`), keep their state private and
 * open connections lazily (the first call, not the constructor). Every adapter runs the
 * contract suite in `packages/agent/test/driver-contract.ts`.
 *
 * Errors: operations reject with a `DriverError` whose `code` comes from `DriverErrorCodes`
 * (`not_found`, `invalid_state`, `invalid_spec`, `no_space`, `unavailable`, `host_error`), or
 * with `ctx.signal.reason` when aborted. Nothing else escapes an adapter on purpose.
 *
 * Idempotency: the task runner runs each task once, but after a crash it may run the same
 * operation again. So operations whose goal already holds succeed without doing anything
 * (power on a VM that is on); operations whose target is gone fail with `not_found` (delete a
 * deleted VM) and the runner, which journals what it did, decides what that means.
 *
 * Deploying from an OVA and host patching are optional methods, so that the type says what a
 * driver can do (`qemu` and `esxi` have no host patching).
 */
export interface Driver {
  readonly kind: HypervisorKind;
  /** Inventory of the host. Called at enrollment and for every status message. */
  hostFacts(): Promise<DriverHostFacts>;
  /**
   * Every VM on the host, in a stable order (creation order), including VMs made outside
   * Pallas (by hand on the host, by another tool).
   */
  listVms(): Promise<Vm[]>;
  /**
   * Creates a VM, powered off, with the spec's name, vCPUs, memory and one disk of `diskGB`
   * (on the datastore the adapter chooses: the one with the most free space). Resolves with the
   * VM as `listVms` will show it; its `id` is new on this host and never reused.
   * - `invalid_spec`: the spec fails the `VmSpec` schema, another VM on the host has that name
   *   (names are unique per host, compared exactly), or it asks for more vCPUs or memory
   *   than the host has at all, or a network the host does not have.
   * - `no_space`: no datastore has `diskGB` free.
   * Not idempotent by itself (a second call with the same spec fails with `invalid_spec`,
   * duplicate name): the task runner checks `listVms` for the name before running it again.
   */
  createVm(spec: VmSpec, ctx: OperationContext): Promise<Vm>;
  /**
   * Changes a VM's power state; resolves with the VM after the change.
   * - `on`: from off or suspended (resume). Already on: no-op.
   * - `off`: hard power-off, from on or suspended. Already off: no-op.
   * - `reset`: hard reset; only when on, else `invalid_state`.
   * - `shutdown`: clean guest shutdown, resolves once the VM is off. Already off: no-op;
   *   suspended: `invalid_state` (no running guest to ask).
   * - `no_space`: powering on (or resuming) needs more host memory than is free.
   * - `not_found`: no such VM. `invalid_spec`: not a `PowerAction`.
   */
  powerVm(vmId: string, action: PowerAction, ctx: OperationContext): Promise<Vm>;
  /**
   * Renames a VM (any power state) and/or changes its vCPUs and memory (only when off: no
   * hot-plug, `invalid_state` otherwise). Fields equal to the current values are no change,
   * so a repeated patch succeeds in any state. Resolves with the VM after the change.
   * - `invalid_spec`: the patch fails the `VmPatch` schema, the new name belongs to another
   *   VM, or the vCPUs/memory exceed what the host has at all.
   * - `not_found`: no such VM.
   */
  updateVm(vmId: string, patch: VmPatch, ctx: OperationContext): Promise<Vm>;
  /**
   * Deletes a VM and its disks, freeing their space. Only when the VM is off: on or suspended
   * is `invalid_state` (power it off first: deleting a running VM by accident is the mistake
   * an operator of thousands of sites must not be able to make with one call).
   * - `not_found`: no such VM, including one already deleted.
   */
  deleteVm(vmId: string, ctx: OperationContext): Promise<void>;
  /**
   * Optional: deploys a VM, powered off, from an opened OVA (`ova.descriptor` gives its shape;
   * the disk files are streamed from `ova.openFile`), under `name` (the caller resolved it: the
   * task's name or the OVF's). Reports progress while the disks are copied. Resolves with the
   * VM as `listVms` will show it. A driver without it cannot deploy (the task fails with
   * `unsupported`).
   * - `invalid_spec`: the name is taken, the OVF asks for more than the host has, or the host
   *   refuses the descriptor (the message says why).
   * - `no_space`: no datastore can hold the disks.
   * Not idempotent by itself; the task runner checks `listVms` for the name, as for create.
   */
  deployVm?(ova: OvaPackage, name: string, ctx: OperationContext): Promise<Vm>;
  /**
   * Optional: applies a `patch` artifact to the host itself (the hypervisor, not a VM).
   * `file` is the verified local file (size, SHA-256 and signature checked against
   * `manifest`); the driver reads it, reports progress, and resolves once the patch is in
   * effect, so that the next `hostFacts()` shows it (`hypervisor.build`). Idempotent: applying
   * the patch the host already has succeeds (the task runner re-runs it after a crash).
   * A driver without it cannot patch its host (the task fails `unsupported`, with
   * `patchUnsupportedReason`'s words).
   * - `invalid_spec`: the file is not a patch this host accepts (the message says why).
   * - `invalid_state`: the host cannot take the patch now (VMs running that it would stop).
   */
  applyPatch?(file: string, manifest: ArtifactManifest, ctx: OperationContext): Promise<void>;
  /**
   * Releases connections and timers. Idempotent; the driver is unusable afterwards (calls
   * reject with `unavailable`); operations still running reject with `unavailable`.
   */
  close(): Promise<void>;
}
