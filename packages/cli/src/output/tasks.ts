/** Human renderings of tasks and VMs: tables, the detail view with its timeline, one-line summaries. */
import { explainTaskError, type Task, type TaskOperation, type Vm } from '@pallas/protocol';
import { formatGB, formatMiB } from '@pallas/protocol/units';
import { formatRelative, formatTimestamp } from './format.js';
import { clean, type Cell, formatFields, formatTable } from './table.js';

const POWER_VERB: Record<string, string> = { on: 'power on', off: 'power off', reset: 'reset', shutdown: 'shut down' };

/** The names a task carries (docs/tasks.md#names); absent from older managers' tasks. */
type Names = Pick<Task, 'vmName' | 'artifactName' | 'artifactVersion'>;

/** A VM by name when known: `'web-1' (vm-104)`, else its id. */
const vmRef = (vmId: string, n: Names): string => (n.vmName !== undefined ? `'${clean(n.vmName)}' (${clean(vmId)})` : clean(vmId));
/** An artifact as `ubuntu 24.04 (art_…)`, else its id. */
const artifactRef = (id: string, n: Names): string => (n.artifactName !== undefined ? `${clean(n.artifactName)} ${clean(n.artifactVersion ?? '')} (${clean(id)})` : clean(id));

/** What the task does, in words: "create VM 'web-1' (2 vCPUs, 2 GiB, 20 GB disk)"; `names` from the task put names before ids. */
export function describeOperation(op: TaskOperation, names: Names = {}): string {
  switch (op.kind) {
    case 'vm.create':
      return `create VM '${clean(op.spec.name)}' (${op.spec.vcpus} vCPU${op.spec.vcpus === 1 ? '' : 's'}, ${formatMiB(op.spec.memoryMB)}, ${formatGB(op.spec.diskGB)} disk)`;
    case 'vm.power':
      return `${POWER_VERB[op.action] ?? `power ${op.action}`} VM ${vmRef(op.vmId, names)}`;
    case 'vm.update': {
      const p = op.patch;
      const parts = [
        p.name !== undefined ? `name '${clean(p.name)}'` : '',
        p.vcpus !== undefined ? `${p.vcpus} vCPUs` : '',
        p.memoryMB !== undefined ? `memory ${formatMiB(p.memoryMB)}` : '',
      ].filter(Boolean);
      return `update VM ${vmRef(op.vmId, names)}: ${parts.join(', ')}`;
    }
    case 'vm.delete':
      return `delete VM ${vmRef(op.vmId, names)}`;
    case 'vm.deploy':
      return `deploy VM${op.name === undefined ? '' : ` '${clean(op.name)}'`} from ${op.source.kind === 'file' ? clean(op.source.path) : `artifact ${artifactRef(op.source.artifactId, names)}`}`;
    case 'device.patch':
      return `patch the device with artifact ${artifactRef(op.artifactId, names)}`;
    case 'agent.update':
      return `update the agent to artifact ${artifactRef(op.artifactId, names)}`;
    default:
      // A kind this CLI does not know yet (a newer manager): still say something useful.
      return (op as { kind: string }).kind;
  }
}

/** "42% copying disk" (or just the state's progress, "-", when nothing was reported). */
function progressCell(t: Task): string {
  if (t.state === 'queued' || t.state === 'sent') return '-';
  const msg = t.progress.message ? ` ${t.progress.message}` : '';
  return `${t.progress.pct}%${msg}`;
}

/**
 * The state in words: "running (cancelling)", or for a task that timed out but whose result
 * came later, "timed out; the device finished it later: succeeded" (the late result is kept
 * for the record and not applied, so the state stays timed_out).
 */
export function stateText(t: Task): string {
  if (t.state === 'timed_out' && t.lateResult) return `timed out; the device finished it later: ${t.lateResult.outcome}`;
  return t.cancelRequested && t.state !== 'cancelled' ? `${t.state} (cancelling)` : t.state;
}

const REASON_MAX = 60;

/** Why a task did not succeed, short enough for a table: "no_space: no datastore on …". */
function reasonCell(t: Task): string | undefined {
  const e = t.state === 'timed_out' && t.lateResult?.error ? t.lateResult.error : t.error;
  if (!e) return undefined;
  const text = `${e.code}: ${e.message}`.replace(/\s+/g, ' ');
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
}

export function taskTable(tasks: readonly Task[], now: number): string {
  return formatTable(
    ['ID', 'KIND', 'DEVICE', 'VM', 'STATE', 'PROGRESS', 'REASON', 'CREATED', 'BY'],
    // Names where the task has them (the ids are in `tasks show` and --json).
    tasks.map((t) => [t.id, t.kind, t.deviceName ?? t.deviceId, t.vmName ?? t.vmId, stateText(t), progressCell(t), reasonCell(t), formatRelative(t.createdAt, now), t.createdBy]),
  );
}

export function vmTable(vms: readonly Vm[]): string {
  return formatTable(
    ['ID', 'NAME', 'POWER', 'VCPUS', 'MEMORY', 'DISK', 'GUEST OS'],
    vms.map((vm) => [vm.id, vm.name, vm.powerState, vm.vcpus, formatMiB(vm.memoryMB), formatGB(vm.diskGB), vm.guestOs]),
  );
}

/** "+3s" after the previous step of the timeline, so slow steps stand out. */
function after(iso: string | null, prev: string | null): string {
  if (!iso || !prev) return '';
  const sec = Math.round((Date.parse(iso) - Date.parse(prev)) / 1000);
  return Number.isFinite(sec) && sec >= 0 ? `  (+${sec}s)` : '';
}

export function taskDetails(t: Task, now: number): string {
  const fields: [string, Cell][] = [
    ['ID', t.id],
    ['Operation', describeOperation(t.operation, t)],
    ['Device', t.deviceName !== undefined ? `${t.deviceName} (${t.deviceId})` : t.deviceId],
    ['VM', t.vm ? `${t.vm.name} (${t.vm.id}, ${t.vm.powerState})` : t.vmId && t.vmName !== undefined ? `${t.vmName} (${t.vmId})` : t.vmId],
    ['State', stateText(t)],
    ['Progress', t.state === 'queued' || t.state === 'sent' ? undefined : progressCell(t)],
    ['Error', t.error ? `${t.error.code}: ${t.error.message}` : undefined],
    // What the code means, for codes this version knows (the message says what happened).
    ['Meaning', t.error ? explainTaskError(t.error.code) : undefined],
    ['Attempt', t.retryOf ? `${t.attempt} (retry of ${t.retryOf})` : t.attempt > 1 ? t.attempt : undefined],
    ['Created by', t.createdBy],
    ['Deadline', `${formatTimestamp(t.deadlineAt)} (${formatRelative(t.deadlineAt, now)})`],
  ];
  if (t.lateResult) {
    const err = t.lateResult.error ? `: ${t.lateResult.error.code}: ${t.lateResult.error.message}` : '';
    fields.push(['Late result', `${t.lateResult.outcome} at ${formatTimestamp(t.lateResult.at)}${err} (arrived after the task was final; not applied)`]);
  }
  const steps: [string, string | null, string | null][] = [
    ['created', t.createdAt, null],
    ['sent', t.sentAt, t.createdAt],
    ['started', t.startedAt, t.sentAt ?? t.createdAt],
    ['finished', t.finishedAt, t.startedAt ?? t.sentAt ?? t.createdAt],
  ];
  const timeline = steps.map(([label, at, prev]) => `  ${label.padEnd(9)}${at ? formatTimestamp(at) : '-'}${after(at, prev)}`);
  return [formatFields(fields), '', 'Timeline:', ...timeline].join('\n');
}
