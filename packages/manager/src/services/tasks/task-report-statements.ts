import type { TaskProgress, TaskResult } from '@pallas/protocol';
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../../store/store.js';
import { storableText } from '../../store/storable-text.js';
import { ACTIVE, type TaskRow } from './task-row.js';

/** A report and the device it came from (the MQTT topic names it, not the payload). */
export interface Reported<T> {
  deviceId: string;
  message: T;
}

/**
 * Rows per statement: well under SQLite's and PostgreSQL's limits on bound parameters (a
 * progress row binds up to six: its id twice, the id and device as one key, pct and message).
 */
export const CHUNK = 400;

/**
 * The statements of a task-report flush. Each one checks, in its own WHERE, that the task is
 * the reporting device's and still active, so a flush needs no read of the tasks' owners
 * first: that read was a round trip of its own on every flush (PostgreSQL: each round trip a
 * socket write and a wake-up on both sides, the largest item of a cluster manager's CPU
 * profile under fan-outs). A report the WHERE leaves out is simply not in RETURNING.
 */

/**
 * `id || ' ' || device_id` in the reports' pairs: the device check, beside the `id IN (…)`
 * the index serves. A key, not a row value: `(id, device_id) IN (VALUES …)` can steer
 * PostgreSQL's planner to a join over the whole table, and SQLite takes no list of row values.
 * No task id has a space (`TaskId`'s pattern, checked on every report), so no key is ambiguous.
 */
function reportedBy(reports: ReadonlyArray<Reported<{ taskId: string }>>): RawBuilder<boolean> {
  return sql<boolean>`tasks.id || ' ' || tasks.device_id in (${sql.join(reports.map(reportKey))})`;
}

/*
 * The callbacks below are functions of the module, not closures made at each call: V8 keeps a
 * closure's optimized code only while one of its instances lives, so one made per flush was
 * compiled again after every major GC (task-reports.ts, `#work`).
 */

function reportKey(r: Reported<{ taskId: string }>): string {
  return `${r.message.taskId} ${r.deviceId}`;
}

export function taskIdOf(r: Reported<{ taskId: string }>): string {
  return r.message.taskId;
}

function pctOf(p: Reported<{ taskId: string }>): number {
  return (p as Reported<TaskProgress>).message.pct;
}

function progressMessageOf(p: Reported<{ taskId: string }>): string | null {
  return storableText((p as Reported<TaskProgress>).message.message) ?? null;
}

function outcomeKey(r: Reported<TaskResult>): string {
  return JSON.stringify([r.message.outcome, r.message.error?.code ?? null, r.message.error?.message ?? null]);
}

function vmWhen(r: Reported<TaskResult>): RawBuilder<unknown> {
  return sql`when ${r.message.taskId} then ${JSON.stringify(r.message.vm)}`;
}

function vmIdWhen(r: Reported<TaskResult>): RawBuilder<unknown> {
  return sql`when ${r.message.taskId} then ${storableText(r.message.vm!.id)}`;
}

/**
 * The order in which task rows are locked, the same for every statement that locks several:
 * byte order (`collate "C"`), which is also the order of JavaScript's sort of these ASCII ids,
 * so that rows locked in several statements, chunk after chunk, follow one order throughout.
 */
const LOCK_ORDER = sql`id collate "C"`;

/**
 * Locks these tasks' rows for the rest of the transaction, in one order (PostgreSQL).
 *
 * Managers sharing a database store reports of the same tasks: a task's progress and its
 * result can reach different managers. An UPDATE … WHERE id IN (…) locks rows in the order
 * its plan meets them, and a flush's statements lock theirs one after the other, so two
 * flushes could each hold a row the other waits for. PostgreSQL then waits a second
 * (`deadlock_timeout`) and aborts one of them, whose reports wait for the retry a second
 * later: in a 2,000-device cluster fan-out such rounds ended 2.5-3.5 s late. Locked first, in
 * one order, no two flushes wait for each other in a circle.
 */
export async function lockTasks(db: Db, ids: readonly string[]): Promise<void> {
  const sorted = [...new Set(ids)].sort();
  for (let i = 0; i < sorted.length; i += CHUNK) {
    await db.selectFrom('tasks').select('id').where('id', 'in', sorted.slice(i, i + CHUNK)).orderBy(LOCK_ORDER).forUpdate().execute();
  }
}

/**
 * The UPDATE of these tasks. With `lockFirst` (PostgreSQL, a statement run on its own, with no
 * transaction whose `lockTasks` took its rows already) the rows are locked first, in
 * `LOCK_ORDER`, by a materialized CTE of the same statement: `lockTasks`'s order at no round
 * trip of its own.
 */
export function updateTasks(db: Db, ids: readonly string[], lockFirst: boolean) {
  const plain = db.updateTable('tasks').where('tasks.id', 'in', ids);
  if (!lockFirst) return plain;
  // The same builder to the caller: `locked` only joins, nothing is read from it.
  return db.with((cte) => cte('locked').materialized(), (qb) => qb.selectFrom('tasks').select('id').where('id', 'in', ids).orderBy(LOCK_ORDER).forUpdate())
    .updateTable('tasks').from('locked').whereRef('tasks.id', '=', 'locked.id') as unknown as typeof plain;
}

/** `case id when … then … end` over the reports, or the one value when all of them agree. */
function perTask<T extends string | number | null>(reports: ReadonlyArray<Reported<{ taskId: string }>>, value: (r: Reported<{ taskId: string }>) => T, cast: 'integer' | 'text'): T | RawBuilder<T> {
  const first = value(reports[0]!);
  let same = true;
  for (let i = 1; i < reports.length && same; i++) same = value(reports[i]!) === first;
  if (same) return first;
  const whens: RawBuilder<unknown>[] = [];
  for (const r of reports) whens.push(sql`when ${r.message.taskId} then ${value(r)}`);
  // Cast: PostgreSQL types a CASE of bound parameters as text, which an integer column refuses.
  return sql<T>`cast(case tasks.id ${sql.join(whens, sql` `)} end as ${sql.raw(cast)})`;
}

/**
 * The latest progress of each task, one statement per chunk whatever the percentages (they go
 * in by CASE): the task becomes `running`. Returns the rows as stored. `lockFirst`: see
 * `updateTasks` (a flush of progress alone, outside a transaction, on PostgreSQL).
 */
export async function storeProgress(db: Db, now: string, progress: ReadonlyArray<Reported<TaskProgress>>, lockFirst = false): Promise<TaskRow[]> {
  const rows: TaskRow[] = [];
  for (let i = 0; i < progress.length; i += CHUNK) {
    const chunk = progress.slice(i, i + CHUNK);
    const update = updateTasks(db, chunk.map(taskIdOf), lockFirst)
      .set({
        state: 'running',
        started_at: sql<string>`coalesce(started_at, ${now})`,
        progress_pct: perTask(chunk, pctOf, 'integer'),
        progress_message: perTask(chunk, progressMessageOf, 'text'),
        updated_at: now,
      })
      .where(reportedBy(chunk))
      .where('tasks.state', 'in', ACTIVE);
    // `tasks.*`: the CTE's `locked` is in the FROM too; SQLite takes no `table.*` in RETURNING.
    rows.push(...(await (lockFirst ? update.returningAll('tasks') : update.returningAll()).execute()));
  }
  return rows;
}

/**
 * Results of tasks (at most one per task), one statement per chunk of those that differ only
 * in their VM (the VM goes in by CASE). Returns the rows they ended; a result not among them
 * was for a task already final, unknown, or another device's.
 */
export async function storeResults(db: Db, now: string, results: ReadonlyArray<Reported<TaskResult>>): Promise<TaskRow[]> {
  const rows: TaskRow[] = [];
  for (const group of groupBy(results, outcomeKey)) {
    const { outcome, error } = group[0]!.message;
    for (let i = 0; i < group.length; i += CHUNK) {
      const chunk = group.slice(i, i + CHUNK);
      const withVm: Reported<TaskResult>[] = [];
      for (const r of chunk) if (r.message.vm) withVm.push(r);
      rows.push(...(await updateTasks(db, chunk.map(taskIdOf), false)
        .set({
          state: outcome,
          finished_at: now,
          started_at: sql<string>`coalesce(started_at, ${now})`,
          error_code: storableText(error?.code) ?? null,
          error_message: storableText(error?.message) ?? null,
          result_vm: withVm.length === 0 ? null : sql<string>`case tasks.id ${sql.join(withVm.map(vmWhen), sql` `)} else null end`,
          vm_id: withVm.length === 0 ? sql<string>`vm_id` : sql<string>`case tasks.id ${sql.join(withVm.map(vmIdWhen), sql` `)} else vm_id end`,
          progress_pct: outcome === 'succeeded' ? 100 : sql<number>`progress_pct`,
          updated_at: now,
        })
        .where(reportedBy(chunk))
        .where('tasks.state', 'in', ACTIVE)
        .returningAll().execute()));
    }
  }
  return rows;
}

/**
 * Results for tasks already final. The same result again (re-sent before our ack arrived) is no
 * news; a different one (the device finished after the task timed out) is kept for the record.
 * Returns the rows that recorded one, and the reports that were not the device's own task at
 * all (read only when some result changed nothing: re-sends are rare, so is this read).
 */
export async function recordLate(db: Db, now: string, settled: ReadonlyArray<Reported<TaskResult>>): Promise<{ late: TaskRow[]; foreign: Array<Reported<TaskResult>> }> {
  const late: TaskRow[] = [];
  const unchanged: Array<Reported<TaskResult>> = [];
  for (const r of settled) {
    const res = r.message;
    const lateResult = JSON.stringify({ outcome: res.outcome, at: now, ...(res.error ? { error: res.error } : {}) });
    const row = await db.updateTable('tasks').set({ late_result: lateResult, updated_at: now })
      .where('id', '=', res.taskId).where('device_id', '=', r.deviceId).where('late_result', 'is', null)
      .where('state', 'not in', ACTIVE).where('state', '!=', res.outcome)
      .returningAll().executeTakeFirst();
    if (row) late.push(row);
    else unchanged.push(r);
  }
  if (unchanged.length === 0) return { late, foreign: [] };
  const owners = new Map<string, string>();
  const ids = [...new Set(unchanged.map((r) => r.message.taskId))];
  for (let i = 0; i < ids.length; i += CHUNK) {
    for (const o of await db.selectFrom('tasks').select(['id', 'device_id']).where('id', 'in', ids.slice(i, i + CHUNK)).execute()) owners.set(o.id, o.device_id);
  }
  return { late, foreign: unchanged.filter((r) => owners.get(r.message.taskId) !== r.deviceId) };
}

export function groupBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}
