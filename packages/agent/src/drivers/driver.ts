import type { HostFacts, HypervisorKind, Vm } from '@pallas/protocol';

/** Host facts as a driver knows them; the agent adds its own version and uptime. */
export type DriverHostFacts = Omit<HostFacts, 'agentVersion' | 'agentUptimeSec'>;

/**
 * The hypervisor port: everything the agent asks of the machine it manages goes through it.
 *
 * Adapters live in a folder each (`sim/`, later `qemu/` and `esxi/`), keep their state
 * private and open connections lazily (the first call, not the constructor).
 *
 * Today the port is read-only inventory. VM lifecycle (create/deploy OVA/power/delete) and
 * host patching arrive with the task runner; they will be added here as methods taking a
 * task context (progress callback + AbortSignal), and abilities not every hypervisor has
 * (snapshots, host patching) as optional methods or `supports…()` checks, so that the type
 * says what a driver can do instead of a runtime surprise.
 */
export interface Driver {
  readonly kind: HypervisorKind;
  /** Inventory of the host. Called at enrollment and for every status message. */
  hostFacts(): Promise<DriverHostFacts>;
  /** Every VM on the host, in a stable order. */
  listVms(): Promise<Vm[]>;
  /** Releases connections and timers. Idempotent; the driver is unusable afterwards. */
  close(): Promise<void>;
}
