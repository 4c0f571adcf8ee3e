import { useState } from 'react';
import type { Device, PowerAction, Task, Vm } from '@pallas/protocol';
import { api, messageOf } from '../../api/client.js';
import { useCan } from '../../auth/AuthProvider.js';
import { PowerBadge } from '../../components/Badges.js';
import { ConfirmDialog } from '../../components/Dialog.js';
import { TaskProgress } from '../../components/TaskProgress.js';
import { formatGB, formatMiB } from '@pallas/protocol/units';
import { isFinal } from '../../lib/task-text.js';
import { CreateVmDialog, DeployVmDialog, EditVmDialog } from './VmDialogs.js';

type Open = { kind: 'create' } | { kind: 'deploy' } | { kind: 'edit'; vm: Vm } | { kind: 'delete'; vm: Vm }
  | { kind: 'power'; vm: Vm; action: PowerAction; label: string } | null;

/** Power actions that make sense from each state (a running VM is not "powered on" again). */
const ACTIONS: Record<Vm['powerState'], Array<{ action: PowerAction; label: string }>> = {
  off: [{ action: 'on', label: 'Power on' }],
  suspended: [{ action: 'on', label: 'Resume' }, { action: 'off', label: 'Power off' }],
  on: [{ action: 'shutdown', label: 'Shut down' }, { action: 'off', label: 'Power off' }, { action: 'reset', label: 'Reset' }],
};

/**
 * What a power action that stops a VM does, for its confirmation. Powering on is harmless and
 * asks nothing; the others stop whatever runs in the guest.
 */
const STOPS: Partial<Record<PowerAction, (vm: string) => string>> = {
  shutdown: (vm) => `The guest system of ${vm} is asked to shut down: its services stop, and it stays off until someone powers it on.`,
  off: (vm) => `The power of ${vm} is cut at once, like pulling the plug: what the guest has not written to disk is lost.`,
  reset: (vm) => `${vm} restarts at once without shutting down its guest system: what the guest has not written to disk is lost.`,
};

/** The name of a VM a create or deploy task is making. */
function pendingName(t: Task): string {
  return t.operation.kind === 'vm.create' ? t.operation.spec.name : t.operation.kind === 'vm.deploy' ? (t.operation.name ?? 'VM from OVA') : '';
}

/**
 * The device's VMs as it last reported them, each with the task in flight on it. Every action
 * answers at once with a task; the row shows that task's progress until the device reports.
 */
export function DeviceVms({ device, tasks, onTask }: { device: Device; tasks: Task[]; onTask(task: Task): void }) {
  const canOperate = useCan('operator');
  const [open, setOpen] = useState<Open>(null);
  const [error, setError] = useState<string | null>(null);
  const activeFor = (vmId: string) => tasks.find((t) => t.vmId === vmId && !isFinal(t));
  const creating = tasks.filter((t) => (t.kind === 'vm.create' || t.kind === 'vm.deploy') && !isFinal(t));

  const power = async (vm: Vm, action: PowerAction) => {
    setError(null);
    try {
      onTask(await api.call('powerVm', { params: { id: device.id, vmId: vm.id }, body: { action } }));
    } catch (err) {
      setError(`${vm.name}: ${messageOf(err)}`);
    }
  };

  return (
    <section className="panel" aria-label="Virtual machines">
      <div className="panel-head">
        <h2>Virtual machines</h2>
        {canOperate && (
          <div className="button-group">
            <button type="button" className="button" onClick={() => setOpen({ kind: 'deploy' })}>Deploy from OVA</button>
            <button type="button" className="button primary" onClick={() => setOpen({ kind: 'create' })}>Create VM</button>
          </div>
        )}
      </div>
      {error && <div className="error-note" role="alert">{error}</div>}
      {creating.map((t) => (
        <div key={t.id} className="pending-row" data-pending-task={t.id}>
          <strong className="clip-name" title={pendingName(t)}>{pendingName(t)}</strong>
          <TaskProgress task={t} presence={device.presence} status={device.status} />
        </div>
      ))}
      {device.vms.length === 0 && creating.length === 0 ? <p className="empty">No virtual machines on this device.</p> : (
        <div className="table-wrap">
          <table className="table stack">
            <thead>
              <tr><th>Name</th><th>Power</th><th className="secondary num">vCPUs</th><th className="secondary num">Memory</th><th className="secondary num">Disk</th><th>{canOperate ? 'Actions' : 'Status'}</th></tr>
            </thead>
            <tbody>
              {device.vms.map((vm) => {
                const task = activeFor(vm.id);
                return (
                  <tr key={vm.id} data-vm-name={vm.name} data-power={vm.powerState}>
                    <td>
                      <span className="vm-name clip-name" title={vm.name}>{vm.name}</span>
                      {vm.guestOs && <small className="muted block">{vm.guestOs}</small>}
                      <small className="muted mobile-only">{vm.vcpus} vCPU · {formatMiB(vm.memoryMB)} · {formatGB(vm.diskGB)}</small>
                    </td>
                    <td><PowerBadge state={vm.powerState} /></td>
                    <td className="secondary num">{vm.vcpus}</td>
                    <td className="secondary num">{formatMiB(vm.memoryMB)}</td>
                    <td className="secondary num">{formatGB(vm.diskGB)}</td>
                    <td className="actions full">
                      {task ? <TaskProgress task={task} presence={device.presence} status={device.status} /> : canOperate ? (
                        <div className="button-group">
                          {ACTIONS[vm.powerState].map((a) => (
                            <button key={a.action} type="button" className="button small"
                              onClick={() => (STOPS[a.action] ? setOpen({ kind: 'power', vm, action: a.action, label: a.label }) : void power(vm, a.action))}>{a.label}</button>
                          ))}
                          <button type="button" className="button small" onClick={() => setOpen({ kind: 'edit', vm })}>Edit</button>
                          {/* The drivers delete powered-off VMs only; offering it otherwise would just fail. */}
                          {vm.powerState === 'off' && <button type="button" className="button small danger-text" onClick={() => setOpen({ kind: 'delete', vm })}>Delete</button>}
                        </div>
                      ) : <span className="muted">—</span>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {open?.kind === 'create' && <CreateVmDialog deviceId={device.id} facts={device.facts} onCreated={onTask} onClose={() => setOpen(null)} />}
      {open?.kind === 'deploy' && <DeployVmDialog deviceId={device.id} onDeployed={onTask} onClose={() => setOpen(null)} />}
      {open?.kind === 'edit' && <EditVmDialog deviceId={device.id} vm={open.vm} facts={device.facts} onSent={onTask} onClose={() => setOpen(null)} />}
      {open?.kind === 'power' && (
        <ConfirmDialog title={`${open.label} ${open.vm.name}?`} confirmLabel={open.label}
          message={<>{STOPS[open.action]!(open.vm.name)} The device is <strong>{device.name}</strong>.</>}
          onConfirm={async () => onTask(await api.call('powerVm', { params: { id: device.id, vmId: open.vm.id }, body: { action: open.action } }))} onClose={() => setOpen(null)} />
      )}
      {open?.kind === 'delete' && (
        <ConfirmDialog title={`Delete ${open.vm.name}?`} confirmLabel="Delete VM" typeToConfirm={open.vm.name}
          message={<>The VM <strong>{open.vm.name}</strong> and its disks are deleted from <strong>{device.name}</strong>. This cannot be undone.</>}
          onConfirm={async () => onTask(await api.call('deleteVm', { params: { id: device.id, vmId: open.vm.id } }))} onClose={() => setOpen(null)} />
      )}
    </section>
  );
}
