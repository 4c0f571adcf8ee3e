import { DriverError, DriverErrorCodes, type DriverErrorCode } from '../../driver-error.js';
import { child, list, text, xsiType, type XmlNode } from './xml.js';

/** A fault the host returned, as it named it (`InvalidLogin`, `InvalidPowerState`, …). */
export class VsphereFault extends Error {
  override readonly name = 'VsphereFault';
  /** The fault's type without the `Fault` element suffix: `InvalidLogin`. */
  readonly faultType: string;
  /** The fault's detail element, parsed, for callers that need a field of it. */
  readonly detail: XmlNode | undefined;

  constructor(faultType: string, message: string, detail?: XmlNode) {
    super(message);
    this.faultType = faultType;
    this.detail = detail;
  }
}

/**
 * vSphere fault types onto driver error codes. The host's fault hierarchy is deep (NoDiskSpace
 * is a FileFault, InvalidPowerState an InvalidState…); these are the ones an edge host returns
 * for the operations the driver runs. Anything else is `host_error`, the host's message kept.
 */
const FAULT_CODES: Record<string, DriverErrorCode> = {
  InvalidLogin: DriverErrorCodes.UNAVAILABLE,
  NotAuthenticated: DriverErrorCodes.UNAVAILABLE,
  NoPermission: DriverErrorCodes.HOST_ERROR,
  HostConnectFault: DriverErrorCodes.UNAVAILABLE,
  InsufficientResourcesFault: DriverErrorCodes.NO_SPACE,
  InsufficientMemoryResourcesFault: DriverErrorCodes.NO_SPACE,
  InsufficientHostMemoryCapacityFault: DriverErrorCodes.NO_SPACE,
  InsufficientStorageSpace: DriverErrorCodes.NO_SPACE,
  NoDiskSpace: DriverErrorCodes.NO_SPACE,
  OutOfBounds: DriverErrorCodes.INVALID_SPEC,
  InvalidArgument: DriverErrorCodes.INVALID_SPEC,
  DuplicateName: DriverErrorCodes.INVALID_SPEC,
  InvalidName: DriverErrorCodes.INVALID_SPEC,
  InvalidPowerState: DriverErrorCodes.INVALID_STATE,
  InvalidState: DriverErrorCodes.INVALID_STATE,
  TaskInProgress: DriverErrorCodes.INVALID_STATE,
  ToolsUnavailable: DriverErrorCodes.INVALID_STATE,
  ManagedObjectNotFound: DriverErrorCodes.NOT_FOUND,
};

export function driverCodeOf(faultType: string): DriverErrorCode {
  return FAULT_CODES[faultType] ?? DriverErrorCodes.HOST_ERROR;
}

/** A `DriverError` for a host fault: `what` says what the driver was doing, the host's message follows. */
export function faultError(fault: VsphereFault, what: string): DriverError {
  return new DriverError(driverCodeOf(fault.faultType), `${what}: ${fault.message} (${fault.faultType})`, { cause: fault });
}

/** Reads a SOAP `<Fault>` (faultstring + detail) into a `VsphereFault`. */
export function readSoapFault(fault: XmlNode): VsphereFault {
  const message = text(fault, 'faultstring') ?? 'unknown fault';
  const detail = child(fault, 'detail');
  let type = 'Unknown';
  let detailNode: XmlNode | undefined;
  if (detail !== undefined) {
    for (const key of Object.keys(detail)) {
      if (key.startsWith('@_') || key === '#text') continue;
      const node = list(detail, key)[0];
      detailNode = typeof node === 'object' && node !== null ? (node as XmlNode) : undefined;
      type = xsiType(node) ?? key.replace(/Fault$/, '');
      break;
    }
  }
  return new VsphereFault(type, message.trim() || type, detailNode);
}

/** Reads a task's `LocalizedMethodFault` (`info.error`) into a `VsphereFault`. */
export function readMethodFault(error: XmlNode): VsphereFault {
  const fault = child(error, 'fault');
  const type = xsiType(fault) ?? 'Unknown';
  const message = text(error, 'localizedMessage') || faultMessages(fault) || type;
  return new VsphereFault(type, message, fault);
}

/** Some faults carry their text in `faultMessage` entries rather than `localizedMessage`. */
function faultMessages(fault: XmlNode | undefined): string {
  return list(fault, 'faultMessage')
    .map((m) => text(m, 'message') ?? '')
    .filter((m) => m !== '')
    .join('; ');
}
