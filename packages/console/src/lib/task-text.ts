import { isFinalTaskState } from '@pallas/protocol/constants';
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
    case 'timed_out': return 'Timed out — no result before the deadline';
  }
}

export const TASK_STATE_LABEL: Record<Task['state'], string> = {
  queued: 'queued', sent: 'sent', running: 'running', succeeded: 'succeeded', failed: 'failed', cancelled: 'cancelled', timed_out: 'timed out',
};
