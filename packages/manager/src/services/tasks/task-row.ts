import type { Task, TaskError, TaskOperation, TaskOutcome, TaskState, Vm } from '@pallas/protocol';
import type { Selectable } from 'kysely';
import type { Db } from '../../store/store.js';
import type { TasksTable } from '../../store/schema.js';

export type TaskRow = Selectable<TasksTable>;

export const ACTIVE: readonly TaskState[] = ['queued', 'sent', 'running'];
export const IN_FLIGHT: readonly TaskState[] = ['sent', 'running'];

const parse = <T>(json: string | null): T | null => (json === null ? null : (JSON.parse(json) as T));

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    deviceId: row.device_id,
    ...(row.device_name !== null ? { deviceName: row.device_name } : {}),
    ...vmNameOf(row),
    ...(row.artifact_name !== null ? { artifactName: row.artifact_name } : {}),
    ...(row.artifact_version !== null ? { artifactVersion: row.artifact_version } : {}),
    kind: row.kind,
    operation: JSON.parse(row.operation) as TaskOperation,
    vmId: row.vm_id,
    state: row.state as TaskState,
    progress: { pct: row.progress_pct, message: row.progress_message },
    cancelRequested: row.cancel_requested === 1,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    vm: parse<Vm>(row.result_vm),
    retryOf: row.retry_of,
    attempt: row.attempt,
    createdBy: row.created_by,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    deadlineAt: row.deadline_at,
    lateResult: parse<{ outcome: TaskOutcome; at: string; error?: TaskError }>(row.late_result),
  };
}

/** The VM's name written with the task, else the one the device reported in the result (a deploy that named none). */
function vmNameOf(row: TaskRow): { vmName?: string } {
  if (row.vm_name !== null) return { vmName: row.vm_name };
  const name = row.result_vm ? (JSON.parse(row.result_vm) as Vm).name : undefined;
  return name !== undefined ? { vmName: name } : {};
}

/** Rows by id, in id order; SQLite caps bound parameters, so long lists go in chunks. */
export async function loadTaskRows(db: Db, ids: readonly string[]): Promise<TaskRow[]> {
  const rows: TaskRow[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    rows.push(...(await db.selectFrom('tasks').selectAll().where('id', 'in', ids.slice(i, i + 500)).orderBy('id').execute()));
  }
  return rows;
}
