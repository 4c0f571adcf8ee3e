/** After a command created a task: print it, or follow it to its end (`--wait`, `tasks watch`). */
import { InvalidArgumentError } from 'commander';
import type { PallasClient } from '@pallas/client';
import { TASK_TIMEOUT_MAX_SEC } from '@pallas/protocol/constants';
import { parseDuration } from '@pallas/protocol/units';
import type { Task } from '@pallas/protocol';
import type { Context } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { formatTimestamp } from '../output/format.js';
import { ProgressView } from '../output/progress.js';
import { clean } from '../output/table.js';
import { describeOperation } from '../output/tasks.js';

/** `--timeout 2h` → seconds, within the manager's bounds (a task's deadline counts from creation). */
export function timeoutArg(value: string): number {
  const sec = parseDuration(value);
  if (sec === undefined) throw new InvalidArgumentError('expected a duration such as 30m, 2h, 7d or a number of seconds');
  if (sec > TASK_TIMEOUT_MAX_SEC) throw new InvalidArgumentError('at most 30d');
  return sec;
}

/** The exit code and message for a final task that did not succeed; undefined on success. */
export function taskOutcomeError(t: Task): CliError | undefined {
  // The error comes from the device: clean() it so it cannot drive the operator's terminal.
  const why = t.error ? `: ${clean(t.error.code)}: ${clean(t.error.message)}` : '';
  switch (t.state) {
    case 'succeeded':
      return undefined;
    case 'failed':
      return new CliError(`task ${t.id} failed${why}`, ExitCode.taskFailed);
    case 'cancelled':
      return new CliError(`task ${t.id} was cancelled${why}`, ExitCode.taskCancelled);
    case 'timed_out': {
      const late = t.lateResult ? `; the device finished it later: ${t.lateResult.outcome}` : '';
      return new CliError(`task ${t.id} timed out: its deadline ${formatTimestamp(t.deadlineAt)} passed${why}${late}`, ExitCode.taskTimedOut);
    }
    default:
      return new CliError(`task ${t.id} is still ${t.state}`);
  }
}

function successLine(t: Task): string {
  const vm = t.operation.kind === 'vm.create' && t.vmId ? ` VM ID: ${t.vmId}.` : '';
  return `Task ${t.id} succeeded: ${describeOperation(t.operation, t)}.${vm}`;
}

/**
 * Follow a task to its end (`tasks watch`, `--wait`): progress on stdout, then the final task.
 * Exits non-zero with the task's error unless it succeeded. Ctrl-C stops watching only.
 */
export async function followTask(ctx: Context, client: PallasClient, id: string): Promise<void> {
  const view = ctx.json ? undefined : new ProgressView(ctx.io.stdout, ctx.io.env);
  const stop = new AbortController();
  const off = ctx.io.onInterrupt?.(() => stop.abort());
  let task: Task;
  try {
    task = await client.waitForTask(id, {
      signal: stop.signal,
      onUpdate: (t) => view?.update(t),
      onFallback: (err) => ctx.note(`note: no live events (${clean(err instanceof Error ? err.message : String(err))}); polling every second`),
    });
  } catch (err) {
    view?.done();
    if (stop.signal.aborted) {
      throw new CliError(`stopped watching; task ${id} carries on (\`pallas tasks watch ${id}\` to follow it again)`, ExitCode.interrupted);
    }
    throw err;
  } finally {
    off?.();
  }
  view?.done();
  ctx.emit(task, () => (task.state === 'succeeded' ? successLine(task) : ''));
  const failure = taskOutcomeError(task);
  if (failure) throw failure;
}

/**
 * After a command created a task: print it and how to follow it, or follow it (`--wait`).
 * `target` names what it acts on ("device 'edge-1'"); `lead` is an extra first line.
 */
export async function reportTask(
  ctx: Context,
  client: PallasClient,
  task: Task,
  opts: { wait?: boolean; target?: string; lead?: string },
): Promise<void> {
  const head = [
    ...(opts.lead ? [opts.lead] : []),
    `Task ${task.id} ${task.state}: ${describeOperation(task.operation, task)}${opts.target ? ` on ${opts.target}` : ''}.`,
  ];
  if (opts.wait) {
    if (!ctx.json) ctx.io.stdout.write(`${head.join('\n')}\n`);
    return followTask(ctx, client, task.id);
  }
  ctx.emit(task, () => [...head, `Follow it with: pallas tasks watch ${task.id}`].join('\n'));
}
