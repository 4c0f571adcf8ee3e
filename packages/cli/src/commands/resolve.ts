/** Finding what a command names: a device by ID or exact name, a VM of a device by ID or exact name. */
import { PallasApiError, type PallasClient } from '@pallas/client';
import type { Device, Vm } from '@pallas/protocol';
import { CliError } from '../errors.js';
import { clean } from '../output/table.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A device by full UUID or exact name. Names are not unique, so a name must match exactly one
 * device; the API's `name` filter is a case-insensitive substring, hence the exact re-check.
 */
export async function resolveDevice(client: PallasClient, ref: string): Promise<Device> {
  if (UUID.test(ref)) {
    try {
      return await client.call('getDevice', { params: { id: ref.toLowerCase() } });
    } catch (err) {
      if (!(err instanceof PallasApiError && err.status === 404)) throw err;
      // fall through: someone may have named a device after a UUID
    }
  }
  const found = await client.all('listDevices', { query: { name: ref } });
  const exact = found.filter((d) => d.name === ref);
  if (exact.length === 1 && exact[0]) return exact[0];
  if (exact.length > 1) {
    const ids = exact.slice(0, 5).map((d) => d.id).join(', ');
    throw new CliError(`${exact.length} devices are named '${clean(ref)}': use an ID (${ids}${exact.length > 5 ? ', …' : ''})`);
  }
  const similar = similarNames(ref, (await candidates(client, ref, found)).map((d) => d.name)).map((n) => `'${clean(n)}'`);
  const hint = similar.length > 0 ? ` (similar: ${similar.join(', ')})` : '';
  throw new CliError(`no device with ID or name '${clean(ref)}'${hint}`);
}

/**
 * Devices whose names may be what `ref` meant: those containing it, and those sharing its
 * part before the first digit (`extra-` for `extra-1`, which finds `extra-01`); with no such
 * part, the first 1000 devices by name. One or two requests, on the error path only.
 */
async function candidates(client: PallasClient, ref: string, containing: Device[]): Promise<Device[]> {
  const stem = /^\D*/.exec(ref)?.[0] ?? '';
  const page = await client.call('listDevices', { query: { ...(stem.length >= 2 ? { name: stem } : {}), limit: 1000 } });
  return [...containing, ...page.items];
}

/** A name as compared: lower case, each run of digits as its number (`Extra-01` → `extra-1`). */
export function nameKey(name: string): string {
  return name.toLowerCase().replace(/\d+/g, (digits) => digits.replace(/^0+(?=\d)/, ''));
}

/** Edit distance (insertions, deletions, substitutions), two rows of memory. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Up to `max` names close to `ref`, closest first: equal once case and zero-padding are
 * ignored (`extra-1` → `extra-01`), containing it or contained in it, or within an edit
 * distance of a third of its length (at least 1). Ties go by name.
 */
export function similarNames(ref: string, names: readonly string[], max = 3): string[] {
  const key = nameKey(ref);
  const limit = Math.max(1, Math.floor(key.length / 3));
  const scored = [...new Set(names)].filter((n) => n !== ref).map((n) => {
    const k = nameKey(n);
    const d = editDistance(key, k);
    const contains = k.includes(key) || (k.length >= 3 && key.includes(k));
    return { n, score: d === 0 ? 0 : d <= limit ? d : contains ? limit + 1 : Infinity };
  });
  return scored.filter((x) => x.score !== Infinity).sort((a, b) => a.score - b.score || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0)).slice(0, max).map((x) => x.n);
}

/** How messages name a device: `device 'edge-1'`. */
export const deviceLabel = (d: Device): string => `device '${clean(d.name)}'`;

/**
 * A VM by ID or exact name, from the manager's copy of the device's inventory. Names need not
 * be unique on a host, so a name must match exactly one VM.
 */
export async function resolveVm(client: PallasClient, device: Device, ref: string): Promise<Vm> {
  const vms = await client.call('listVms', { params: { id: device.id } });
  const byId = vms.find((vm) => vm.id === ref);
  if (byId) return byId;
  const named = vms.filter((vm) => vm.name === ref);
  if (named.length === 1 && named[0]) return named[0];
  if (named.length > 1) throw new CliError(`${named.length} VMs on ${deviceLabel(device)} are named '${clean(ref)}': use an ID (${named.map((v) => v.id).join(', ')})`);
  throw new CliError(`no VM with ID or name '${clean(ref)}' on ${deviceLabel(device)} (\`pallas vms ls ${device.id}\` lists them)`);
}
