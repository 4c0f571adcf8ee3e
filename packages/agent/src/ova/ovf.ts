import { XMLParser } from 'fast-xml-parser';

/** What Pallas reads from an OVF descriptor (DMTF DSP0243): enough to plan and check a deploy. */
export interface OvfDescriptor {
  /** The virtual system's `<Name>` (else its `ovf:id`): the VM's default name. */
  name: string;
  vcpus: number;
  memoryMB: number;
  disks: OvfDisk[];
  /** Network names from the NetworkSection. */
  networks: string[];
}

export interface OvfDisk {
  diskId: string;
  /** The file (in the OVA) holding the disk's contents; absent for a blank disk. */
  href?: string;
  /** Virtual size in bytes. */
  capacityBytes: number;
  /** `ovf:format`, e.g. `http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized`. */
  format?: string;
}

/** A descriptor Pallas cannot deploy: the message says which element is wrong. */
export class OvfError extends Error {
  override readonly name = 'OvfError';
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  // No entity expansion: a descriptor is data from wherever the OVA came from.
  processEntities: false,
  isArray: (name) => ['File', 'Disk', 'Network', 'Item', 'VirtualSystem', 'StorageItem', 'EthernetPortItem'].includes(name),
});

type Node = Record<string, unknown>;

function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return str((v as Node)['#text']);
  return String(v).trim();
}

function arr(v: unknown): Node[] {
  return Array.isArray(v) ? (v as Node[]) : v === undefined ? [] : [v as Node];
}

/**
 * `byte * 2^30`, `byte*2^20`, `byte * 1024`, `MegaBytes`, `GigaBytes`, `KiloBytes`, `byte`:
 * the multiplier to bytes. OVF's programmatic units allow more, but these are what tools write.
 */
export function unitBytes(units: string | undefined, fallback: number): number {
  if (units === undefined || units === '') return fallback;
  const u = units.replace(/\s+/g, '').toLowerCase();
  const named: Record<string, number> = { byte: 1, bytes: 1, kilobytes: 2 ** 10, megabytes: 2 ** 20, gigabytes: 2 ** 30, terabytes: 2 ** 40 };
  if (u in named) return named[u]!;
  const m = /^bytes?\*(\d+)(?:\^(\d+))?$/.exec(u);
  if (m) return m[2] === undefined ? Number(m[1]) : Number(m[1]) ** Number(m[2]);
  throw new OvfError(`unsupported allocation units "${units}"`);
}

function positiveInt(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || !Number.isFinite(n) || n <= 0) throw new OvfError(`${what} must be a positive number, got "${text ?? ''}"`);
  return n;
}

/** Parses an OVF descriptor. Exactly one VirtualSystem (no vApps of several VMs). */
export function parseOvf(xml: string): OvfDescriptor {
  let doc: Node;
  try {
    doc = parser.parse(xml, true) as Node;
  } catch (err) {
    throw new OvfError(`descriptor is not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const env = doc['Envelope'] as Node | undefined;
  if (!env || typeof env !== 'object') throw new OvfError('descriptor has no <Envelope>');

  const files = new Map<string, string>();
  for (const f of arr((env['References'] as Node | undefined)?.['File'])) {
    const id = str(f['@id']);
    const href = str(f['@href']);
    if (id && href) files.set(id, href);
  }

  const disks: OvfDisk[] = arr((env['DiskSection'] as Node | undefined)?.['Disk']).map((d) => {
    const diskId = str(d['@diskId']) ?? '';
    if (!diskId) throw new OvfError('a <Disk> has no ovf:diskId');
    const capacity = positiveInt(str(d['@capacity']), `disk ${diskId} capacity`);
    const fileRef = str(d['@fileRef']);
    const href = fileRef === undefined ? undefined : files.get(fileRef);
    if (fileRef !== undefined && href === undefined) throw new OvfError(`disk ${diskId} refers to file "${fileRef}", which <References> does not list`);
    const format = str(d['@format']);
    return {
      diskId,
      ...(href === undefined ? {} : { href }),
      capacityBytes: capacity * unitBytes(str(d['@capacityAllocationUnits']), 1),
      ...(format === undefined ? {} : { format }),
    };
  });

  const networks = arr((env['NetworkSection'] as Node | undefined)?.['Network']).map((n) => str(n['@name'])).filter((n): n is string => !!n);

  // A VirtualSystem directly, or inside a VirtualSystemCollection (a vApp): one VM only.
  const systems = [...arr(env['VirtualSystem']), ...arr((env['VirtualSystemCollection'] as Node | undefined)?.['VirtualSystem'])];
  if (systems.length === 0) throw new OvfError('descriptor has no <VirtualSystem>');
  if (systems.length > 1) throw new OvfError(`descriptor has ${systems.length} virtual systems; Pallas deploys one VM per OVA`);
  const vs = systems[0]!;
  const name = str(vs['Name']) || str(vs['@id']);
  if (!name) throw new OvfError('the <VirtualSystem> has neither <Name> nor ovf:id');

  const hardware = arr(vs['VirtualHardwareSection'])[0];
  if (!hardware) throw new OvfError('the <VirtualSystem> has no <VirtualHardwareSection>');
  let vcpus: number | undefined;
  let memoryMB: number | undefined;
  for (const item of arr(hardware['Item'])) {
    const type = str(item['ResourceType']);
    if (type === '3') vcpus = positiveInt(str(item['VirtualQuantity']), 'the CPU item\'s VirtualQuantity');
    if (type === '4') {
      const qty = positiveInt(str(item['VirtualQuantity']), 'the memory item\'s VirtualQuantity');
      // Memory without units is in MB by long-standing convention (VMware, VirtualBox).
      memoryMB = Math.round((qty * unitBytes(str(item['AllocationUnits']), 2 ** 20)) / 2 ** 20);
    }
  }
  if (vcpus === undefined) throw new OvfError('the hardware section has no CPU item (ResourceType 3)');
  if (memoryMB === undefined) throw new OvfError('the hardware section has no memory item (ResourceType 4)');
  return { name, vcpus, memoryMB, disks, networks };
}
