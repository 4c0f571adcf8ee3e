import { useState, type ReactNode } from 'react';
import { PallasApiError } from '@pallas/client';
import type { HostFacts, Task, Vm, VmPatch } from '@pallas/protocol';
import { api } from '../../api/client.js';
import { Dialog } from '../../components/Dialog.js';
import { ErrorNote } from '../../components/ErrorNote.js';
import { Field } from '../../components/Field.js';
import { useResource } from '../../hooks/useResource.js';
import { formatBytes, formatGB, formatMiB } from '@pallas/protocol/units';
import { VM_LIMITS } from '@pallas/protocol/constants';
import { validateVm, type VmFormValues } from '../../lib/vm-form.js';

/**
 * The host's capacity from its last report, shown beside the fields. A hint, not a rule: the
 * manager checks the same facts when the request arrives (docs/tasks.md#checks-before-queuing).
 */
function capacityOf(facts: HostFacts | null | undefined): { vcpus?: string; memoryMB?: string; diskGB?: string } {
  if (!facts) return {};
  const mostFree = facts.datastores.length > 0 ? Math.max(...facts.datastores.map((d) => d.freeGB)) : undefined;
  return {
    ...(facts.cpu.cores > 0 ? { vcpus: `The host has ${facts.cpu.cores} cores` } : {}),
    ...(facts.memory.totalMB > 0 ? { memoryMB: `The host has ${formatMiB(facts.memory.totalMB)}` } : {}),
    ...(mostFree !== undefined ? { diskGB: `Up to ${formatGB(mostFree)} free on a datastore` } : {}),
  };
}

/** A refusal from the manager's check against the host's last report, which `force` overrides. */
function refusedByHostCheck(err: unknown): boolean {
  return err instanceof PallasApiError && (err.code === 'exceeds_host' || err.code === 'conflict') && err.message.includes('force=true');
}

/**
 * "Send anyway", offered once the manager refused the request on the host's last report: the
 * report may be stale (the host was upgraded, a VM was removed by hand since).
 */
function useForce(): { force: boolean; offer: boolean; refused(err: unknown): never; checkbox: ReactNode } {
  const [offer, setOffer] = useState(false);
  const [force, setForce] = useState(false);
  return {
    force,
    offer,
    refused(err: unknown): never {
      if (refusedByHostCheck(err)) setOffer(true);
      throw err;
    },
    checkbox: offer ? (
      <label className="check">
        <input type="checkbox" name="force" checked={force} onChange={(e) => setForce(e.target.checked)} />
        <span>Send anyway: the host may have changed since its last report</span>
      </label>
    ) : null,
  };
}

/** Create a VM (it is created powered off). Checked here with the manager's own limits. */
export function CreateVmDialog({ deviceId, facts, onCreated, onClose }: { deviceId: string; facts?: HostFacts | null; onCreated(task: Task): void; onClose(): void }) {
  const [values, setValues] = useState<VmFormValues>({ name: '', vcpus: '2', memoryMB: '2048', diskGB: '20' });
  const [touched, setTouched] = useState(false);
  const errors = validateVm(values);
  const shown = touched ? errors : {};
  const capacity = capacityOf(facts);
  const force = useForce();
  const change = (key: keyof VmFormValues) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [key]: e.target.value }));
  return (
    <Dialog
      title="Create a virtual machine"
      submitLabel="Create VM"
      onClose={onClose}
      onSubmit={async () => {
        setTouched(true);
        if (Object.keys(errors).length > 0) throw new Error('Fix the fields marked above.');
        const task = await api.call('createVm', {
          params: { id: deviceId },
          ...(force.force ? { query: { force: true } } : {}),
          body: { name: values.name, vcpus: Number(values.vcpus), memoryMB: Number(values.memoryMB), diskGB: Number(values.diskGB) },
        }).catch(force.refused);
        onCreated(task);
      }}
    >
      <Field label="Name" name="vm-name" value={values.name} onChange={change('name')} error={shown.name} maxLength={VM_LIMITS.name.maxLength} autoFocus
        hint={`Letters, digits, dot, dash, underscore; up to ${VM_LIMITS.name.maxLength} characters`} />
      <div className="field-row">
        <Field label="vCPUs" name="vm-vcpus" type="number" inputMode="numeric" min={VM_LIMITS.vcpus.minimum} max={VM_LIMITS.vcpus.maximum} value={values.vcpus} onChange={change('vcpus')} error={shown.vcpus} hint={capacity.vcpus} />
        <Field label="Memory (MiB)" name="vm-memory" type="number" inputMode="numeric" min={VM_LIMITS.memoryMB.minimum} max={VM_LIMITS.memoryMB.maximum} step={64} value={values.memoryMB} onChange={change('memoryMB')} error={shown.memoryMB} hint={capacity.memoryMB} />
        <Field label="Disk (GB)" name="vm-disk" type="number" inputMode="decimal" min={1} max={VM_LIMITS.diskGB.maximum} value={values.diskGB} onChange={change('diskGB')} error={shown.diskGB} hint={capacity.diskGB} />
      </div>
      {force.checkbox}
      <p className="muted small">The device creates it powered off. If the device is offline, the request waits in its queue until it reconnects.</p>
    </Dialog>
  );
}

/**
 * Rename a VM, or change its vCPUs and memory. The hypervisors have no hot-plug, so the size
 * can only change while the VM is off; the form says so rather than letting the task fail.
 */
export function EditVmDialog({ deviceId, vm, facts, onSent, onClose }: { deviceId: string; vm: Vm; facts?: HostFacts | null; onSent(task: Task): void; onClose(): void }) {
  const [values, setValues] = useState<VmFormValues>({ name: vm.name, vcpus: String(vm.vcpus), memoryMB: String(vm.memoryMB), diskGB: String(vm.diskGB || 1) });
  const resizable = vm.powerState === 'off';
  const errors = validateVm(values, resizable ? ['name', 'vcpus', 'memoryMB'] : ['name']);
  const change = (key: keyof VmFormValues) => (e: { target: { value: string } }) => setValues((v) => ({ ...v, [key]: e.target.value }));
  const patch: VmPatch = {};
  if (values.name !== vm.name) patch.name = values.name;
  if (resizable && Number(values.vcpus) !== vm.vcpus) patch.vcpus = Number(values.vcpus);
  if (resizable && Number(values.memoryMB) !== vm.memoryMB) patch.memoryMB = Number(values.memoryMB);
  const changed = Object.keys(patch).length > 0;
  const capacity = capacityOf(facts);
  const force = useForce();
  return (
    <Dialog title={`Edit ${vm.name}`} submitLabel="Save changes" canSubmit={changed && Object.keys(errors).length === 0} onClose={onClose}
      onSubmit={async () => onSent(await api.call('updateVm', { params: { id: deviceId, vmId: vm.id }, ...(force.force ? { query: { force: true } } : {}), body: patch }).catch(force.refused))}>
      <Field label="Name" name="vm-name" value={values.name} onChange={change('name')} error={errors.name} maxLength={VM_LIMITS.name.maxLength} />
      <div className="field-row">
        <Field label="vCPUs" name="vm-vcpus" type="number" disabled={!resizable} value={values.vcpus} onChange={change('vcpus')} error={errors.vcpus} hint={resizable ? capacity.vcpus : undefined} />
        <Field label="Memory (MiB)" name="vm-memory" type="number" step={64} disabled={!resizable} value={values.memoryMB} onChange={change('memoryMB')} error={errors.memoryMB} hint={resizable ? capacity.memoryMB : undefined} />
      </div>
      {force.checkbox}
      {!resizable && <p className="muted small">Power the VM off to change its vCPUs or memory.</p>}
    </Dialog>
  );
}

/**
 * Deploy a VM from an OVA artifact: the device's agent downloads it from the manager (checking
 * size and SHA-256) and imports it, powered off. The name defaults to the OVF's own.
 */
export function DeployVmDialog({ deviceId, onDeployed, onClose }: { deviceId: string; onDeployed(task: Task): void; onClose(): void }) {
  const ovas = useResource((signal) => api.call('listArtifacts', { query: { kind: 'ova', limit: 500 }, signal }), []);
  const [artifactId, setArtifactId] = useState('');
  const [name, setName] = useState('');
  const nameError = name ? validateVm({ name, vcpus: '1', memoryMB: '1', diskGB: '1' }, ['name']).name : undefined;
  const items = ovas.data?.items ?? [];
  const chosen = artifactId || items[0]?.id || '';
  return (
    <Dialog title="Deploy a VM from an OVA" submitLabel="Deploy" canSubmit={!!chosen && !nameError} onClose={onClose}
      onSubmit={async () => onDeployed(await api.call('deployVm', { params: { id: deviceId }, body: { source: { kind: 'artifact', artifactId: chosen }, ...(name ? { name } : {}) } }))}>
      <ErrorNote error={ovas.error} onRetry={ovas.reload} />
      {ovas.data && items.length === 0 && <p className="notice">There is no OVA artifact yet. Upload one on the Artifacts page first.</p>}
      {items.length > 0 && (
        <label className="field">
          <span>OVA artifact</span>
          <select name="deploy-artifact" value={chosen} onChange={(e) => setArtifactId(e.target.value)}>
            {items.map((a) => <option key={a.id} value={a.id}>{a.name} {a.version} ({formatBytes(a.size)})</option>)}
          </select>
        </label>
      )}
      <Field label="VM name (optional)" name="deploy-name" value={name} onChange={(e) => setName(e.target.value)} error={nameError}
        maxLength={VM_LIMITS.name.maxLength} hint="Empty: the name in the OVA" />
      <p className="muted small">The device downloads the OVA from this manager and checks its hash, then creates the VM powered off. If the device is offline, the request waits in its queue.</p>
    </Dialog>
  );
}
