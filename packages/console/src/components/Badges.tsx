import type { DeviceStatus, PowerState, Presence, TaskState } from '@pallas/protocol';
import { TASK_STATE_LABEL } from '../lib/task-text.js';

export function PresenceBadge({ presence }: { presence: Presence }) {
  return <span className={`badge presence-${presence}`} data-presence={presence}>{presence}</span>;
}

export function PowerBadge({ state }: { state: PowerState }) {
  return <span className={`badge power-${state}`} data-power={state}>{state}</span>;
}

export function TaskStateBadge({ state }: { state: TaskState }) {
  return <span className={`badge task-${state}`} data-state={state}>{TASK_STATE_LABEL[state]}</span>;
}

export function RoleBadge({ role }: { role: string }) {
  return <span className={`badge role-${role}`}>{role}</span>;
}

const STATUS_TEXT: Record<DeviceStatus, string> = { active: 'active', pending: 'pending approval', blocked: 'blocked' };

/** A device's standing with the manager; `active` is the normal case and shows nothing. */
export function DeviceStatusBadge({ status }: { status: DeviceStatus }) {
  if (status === 'active') return null;
  return <span className={`badge status-${status}`} data-status={status}>{STATUS_TEXT[status]}</span>;
}
