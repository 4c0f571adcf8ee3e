import { explainTaskError, isFinalTaskState, retryCanHelp } from '@pallas/protocol/constants';
import type { DeviceStatus, Presence, Task, TaskOperation } from '@pallas/protocol';

/** "Create VM web-1", "Power off vm-3" — what a task does, in words. */
export function describeOperation(op: TaskOperation, vmName?: string): string {
  const vm = vmName ?? ('vmId' in op ? op.vmId : '');
  switch (op.kind) {
    case 'vm.create': return `Create VM ${op.spec.name}`;
    case 'vm.power': return `${POWER_WORDS[op.action]} ${vm}`;
    case 'vm.update': return `Edit VM ${vm}`;
    case 'vm.delete': return `Delete VM ${vm}`;
    case 'vm.deploy': return `Deploy VM ${op.name === undefined ? '' : `${op.name} `}from ${op.source.kind === 'file' ? op.source.path : `artifact ${op.source.artifactId}`}`;
    case 'device.patch': return `Patch device with artifact ${op.artifactId}`;
    case 'agent.update': return `Update agent to artifact ${op.artifactId}`;
  }
}

/** A task's operation in words, with the names it carries: "Power off web-1", "Deploy VM from ubuntu 24.04". */
export function describeTask(t: Task): string {
  const op = t.operation;
  const artifact = t.artifactName !== undefined ? `${t.artifactName} ${t.artifactVersion ?? ''}`.trim() : undefined;
  if (artifact !== undefined && op.kind === 'vm.deploy' && op.source.kind === 'artifact') return `Deploy VM ${op.name === undefined ? '' : `${op.name} `}from ${artifact}`;
  if (artifact !== undefined && op.kind === 'device.patch') return `Patch device with ${artifact}`;
  if (artifact !== undefined && op.kind === 'agent.update') return `Update agent to ${artifact}`;
  return describeOperation(op, t.vmName ?? t.vm?.name);
}

const POWER_WORDS = { on: 'Power on', off: 'Power off', reset: 'Reset', shutdown: 'Shut down' } as const;

export function isFinal(task: Task): boolean {
  return isFinalTaskState(task.state);
}

/**
 * Where a task is, said plainly: the operator should never have to guess whether something is
 * happening, waiting for a device, or over. `presence` and `status` are the device's, when known.
 */
export function taskStatusText(task: Task, presence?: Presence, status?: DeviceStatus): string {
  if (task.cancelRequested && !isFinal(task)) return 'Cancel requested — waiting for the device to answer';
  switch (task.state) {
    case 'queued':
      if (status === 'blocked') return 'Queued — device blocked, runs once it is unblocked and reconnects';
      if (status === 'pending') return 'Queued — device waiting for approval, runs once it is approved and connects';
      if (presence === 'offline') return 'Queued — device offline, will run when it reconnects';
      if (presence === 'unresponsive') return 'Queued — device unresponsive (connected, not reporting), will run when it responds';
      if (presence === 'online') return 'Queued — waiting for the device to take it';
      return 'Queued — sent when the device is online and free';
    case 'sent': return 'Sent to device, waiting for it to start';
    case 'running': return task.progress.message ? `Running — ${task.progress.message}` : `Running on the device (${task.progress.pct}%)`;
    case 'succeeded': return 'Succeeded';
    case 'failed': return `Failed${task.error ? `: ${task.error.message}` : ''}`;
    case 'cancelled': return 'Cancelled';
    case 'timed_out': return task.lateResult ? `Timed out; ${lateText(task)}` : 'Timed out — no result before the deadline';
  }
}

/** "the device finished it later: succeeded" for a task whose result came after it timed out (or was otherwise final). */
export function lateText(task: Task): string {
  return task.lateResult ? `the device finished it later: ${task.lateResult.outcome}` : '';
}

/** The code a final task's outcome comes down to (its error's, else its state's). */
function outcomeCode(task: Task): string | undefined {
  return task.error?.code ?? (task.state === 'timed_out' ? 'timed_out' : task.state === 'cancelled' ? 'cancelled' : undefined);
}

/**
 * Whether to offer Retry, and if not, why (docs/tasks.md#retry): only failed, cancelled and
 * timed-out tasks, and only when the code says running it again can help.
 */
export function retryAdvice(task: Task): { offer: boolean; why?: string } {
  if (task.state !== 'failed' && task.state !== 'cancelled' && task.state !== 'timed_out') return { offer: false };
  if (task.state === 'timed_out' && task.lateResult?.outcome === 'succeeded') return { offer: false, why: 'The device finished it later: it succeeded, so there is nothing to retry.' };
  const code = outcomeCode(task);
  if (code === undefined || retryCanHelp(code)) return { offer: true };
  return { offer: false, why: 'Running it again would fail the same way: change the request or the device first.' };
}

/** A task's error in words (what the code means, then what happened), and its raw code. */
export function errorWords(error: { code: string; message: string }): { words: string; code: string } {
  const meaning = explainTaskError(error.code);
  const words = meaning ? `${meaning[0]!.toUpperCase()}${meaning.slice(1)}${error.message ? `: ${error.message}` : '.'}` : error.message || error.code;
  return { words, code: error.code };
}

export const TASK_STATE_LABEL: Record<Task['state'], string> = {
  queued: 'queued', sent: 'sent', running: 'running', succeeded: 'succeeded', failed: 'failed', cancelled: 'cancelled', timed_out: 'timed out',
};
