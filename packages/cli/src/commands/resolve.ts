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
  const similar = found.slice(0, 3).map((d) => `'${clean(d.name)}'`);
  const hint = similar.length > 0 ? ` (similar: ${similar.join(', ')})` : '';
  throw new CliError(`no device with ID or name '${clean(ref)}'${hint}`);
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
