/**
 * The driver error registry. Every adapter maps its hypervisor's failures onto these codes, so
 * the task runner, the manager and the operator see the same code for the same situation on
 * ESXi, QEMU and sim. The message is for operators (what went wrong, on which VM, what to do);
 * the hypervisor's own error, if any, goes in `cause`.
 */
export const DriverErrorCodes = {
  /** No VM with that id on this host (never existed, or deleted in the meantime). */
  NOT_FOUND: 'not_found',
  /** The VM's state forbids the operation: reset of a VM that is off, delete of a running VM… */
  INVALID_STATE: 'invalid_state',
  /** The spec or patch is invalid for this host: schema violation, duplicate name, too big. */
  INVALID_SPEC: 'invalid_spec',
  /** Not enough capacity on the host: datastore space for a disk, free memory to power on. */
  NO_SPACE: 'no_space',
  /** The hypervisor cannot be reached or the driver is closed; retrying later may work. */
  UNAVAILABLE: 'unavailable',
  /** The hypervisor failed the operation for a reason of its own (see `cause`). */
  HOST_ERROR: 'host_error',
} as const;
export type DriverErrorCode = (typeof DriverErrorCodes)[keyof typeof DriverErrorCodes];
export const DRIVER_ERROR_CODES = Object.values(DriverErrorCodes) as DriverErrorCode[];

export class DriverError extends Error {
  override readonly name = 'DriverError';
  readonly code: DriverErrorCode;

  constructor(code: DriverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

export function isDriverError(err: unknown, code?: DriverErrorCode): err is DriverError {
  return err instanceof DriverError && (code === undefined || err.code === code);
}
