import type { DeviceStatus, PowerState, Presence, TaskOutcome, TaskState } from '@pallas/protocol';
import { TASK_STATE_LABEL } from '../lib/task-text.js';

export function PresenceBadge({ presence }: { presence: Presence }) {
  return <span className={`badge presence-${presence}`} data-presence={presence}>{presence}</span>;
}

export function PowerBadge({ state }: { state: PowerState }) {
  return <span className={`badge power-${state}`} data-power={state}>{state}</span>;
}

export function TaskStateBadge({ state, late }: { state: TaskState; late?: TaskOutcome | undefined }) {
  return (
    <>
      <span className={`badge task-${state}`} data-state={state}>{TASK_STATE_LABEL[state]}</span>
      {late && <span className="small late-result" data-late={late}> the device finished it later: {late}</span>}
    </>
  );
}

const FLAG_TEXT: Record<string, { label: string; title: string }> = {
  duplicate_name: { label: 'duplicate name', title: 'Another device has this name: rename one so that names find one device' },
  credential_clone_suspected: { label: 'credential clone suspected', title: 'See docs/security.md' },
};

/** A device's warnings: a name it shares with another device, a suspected credential clone. */
export function DeviceFlagBadges({ flags }: { flags: readonly string[] }) {
  return <>{flags.map((f) => <span key={f} className="badge status-blocked" data-flag={f} title={FLAG_TEXT[f]?.title ?? f}>{FLAG_TEXT[f]?.label ?? f.replace(/_/g, ' ')}</span>)}</>;
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
