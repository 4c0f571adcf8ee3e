import { AgentError, AgentErrorCodes } from '../errors.js';
import type { Driver } from './driver.js';
import type { EsxiDriverOptions } from './esxi/esxi-driver.js';
import type { QemuDriverOptions } from './qemu/qemu-driver.js';
import type { SimDriverOptions } from './sim/sim-driver.js';

export type { Driver, DriverHostFacts, OperationContext } from './driver.js';
export { DriverError, DriverErrorCodes, DRIVER_ERROR_CODES, isDriverError, type DriverErrorCode } from './driver-error.js';
export type { SimDriverOptions, SimOperation } from './sim/sim-driver.js';
export type { QemuDriverOptions } from './qemu/qemu-driver.js';
export type { EsxiDriverOptions } from './esxi/esxi-driver.js';

/** Options per driver name, as they appear under the same key in the agent's config file. */
export interface DriverOptionsMap {
  sim: SimDriverOptions;
  qemu: QemuDriverOptions;
  esxi: EsxiDriverOptions;
}
export type DriverName = keyof DriverOptionsMap;

type Loader<N extends DriverName> = (options: DriverOptionsMap[N]) => Promise<Driver>;

// Lazy imports: a device running the sim driver never loads a SOAP client, and the other way
// round. Each module is asked for once and its promise kept: the simulator creates thousands
// of drivers, and every import() is a module resolution (under a module hook such as the
// benchmark's tsx, a round trip to the loader's thread).
let sim: Promise<typeof import('./sim/sim-driver.js')> | undefined;
let qemu: Promise<typeof import('./qemu/qemu-driver.js')> | undefined;
let esxi: Promise<typeof import('./esxi/esxi-driver.js')> | undefined;
const loaders: { [N in DriverName]: Loader<N> } = {
  sim: async (options) => new (await (sim ??= import('./sim/sim-driver.js'))).SimDriver(options),
  qemu: async (options) => new (await (qemu ??= import('./qemu/qemu-driver.js'))).QemuDriver(options),
  esxi: async (options) => new (await (esxi ??= import('./esxi/esxi-driver.js'))).EsxiDriver(options),
};

export const DRIVER_NAMES = Object.keys(loaders) as DriverName[];

export function isDriverName(name: string): name is DriverName {
  return Object.hasOwn(loaders, name);
}

/** Checks a driver name without loading it: for config validation. */
export function assertDriverAvailable(name: string): asserts name is DriverName {
  if (!isDriverName(name)) {
    throw new AgentError(AgentErrorCodes.DRIVER_UNKNOWN, `unknown driver "${name}"; valid drivers: ${DRIVER_NAMES.join(', ')}`);
  }
}

export async function createDriver<N extends DriverName>(name: N, options?: DriverOptionsMap[N]): Promise<Driver>;
export async function createDriver(name: string, options?: unknown): Promise<Driver>;
export async function createDriver(name: string, options: unknown = {}): Promise<Driver> {
  assertDriverAvailable(name);
  const load = loaders[name] as Loader<DriverName>;
  return load(options as never);
}
