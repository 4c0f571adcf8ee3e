import type { Vm } from '@pallas/protocol';
import { sql } from 'kysely';
import type { Db } from '../../store/store.js';
import type { TaskRow } from './task-row.js';

/** Rows per statement: two bound parameters per device in the CASE, one in the IN list. */
const CHUNK = 300;

/**
 * Applies succeeded VM tasks to their devices' stored inventory, in the transaction that
 * stores the results: the VM a create, deploy, power or update returned replaces (or joins)
 * the VM of that id, and a delete removes its VM. So the VM list agrees with a task the
 * moment the task says `succeeded`, instead of after the device's next status report, which
 * still follows (within a few seconds) and stays the authority: it also carries what changed
 * on the host outside Pallas.
 *
 * Returns the new list of each device it changed, for the live stream.
 */
export async function applyResultsToInventory(tx: Db, rows: readonly TaskRow[]): Promise<Map<string, Vm[]>> {
  const effective = rows.filter((r) => r.state === 'succeeded' && (r.result_vm !== null || (r.kind === 'vm.delete' && r.vm_id !== null)));
  const changed = new Map<string, Vm[]>();
  if (effective.length === 0) return changed;
  const deviceIds = [...new Set(effective.map((r) => r.device_id))];
  for (let i = 0; i < deviceIds.length; i += CHUNK) {
    const stored = await tx.selectFrom('devices').select(['id', 'vms']).where('id', 'in', deviceIds.slice(i, i + CHUNK)).execute();
    for (const d of stored) changed.set(d.id, d.vms === null ? [] : (JSON.parse(d.vms) as Vm[]));
  }
  // In task id order, i.e. creation order: two tasks on one VM in one batch apply as they ran.
  for (const row of [...effective].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const vms = changed.get(row.device_id);
    if (!vms) continue; // the device was removed meanwhile
    if (row.result_vm !== null) {
      const vm = JSON.parse(row.result_vm) as Vm;
      const at = vms.findIndex((v) => v.id === vm.id);
      if (at >= 0) vms[at] = vm;
      else vms.push(vm);
    } else {
      changed.set(row.device_id, vms.filter((v) => v.id !== row.vm_id));
    }
  }
  const entries = [...changed];
  for (let i = 0; i < entries.length; i += CHUNK) {
    const chunk = entries.slice(i, i + CHUNK);
    await tx.updateTable('devices')
      .set({ vms: sql<string>`case id ${sql.join(chunk.map(([id, vms]) => sql`when ${id} then ${JSON.stringify(vms)}`), sql` `)} else vms end` })
      .where('id', 'in', chunk.map(([id]) => id))
      .execute();
  }
  return changed;
}
