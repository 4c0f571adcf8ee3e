/** `pallas tasks …`: list, inspect, watch, cancel and retry tasks (every change on a device is one). */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { TASK_TIMEOUT_MAX_SEC, type Task, type TaskState } from '@pallas/protocol';
import { MAX_PAGE, type PallasClient } from '../client.js';
import type { Context } from '../context.js';
import { parseDuration } from '../duration.js';
import { CliError, ExitCode } from '../errors.js';
import type { Io } from '../io.js';
import { formatTimestamp } from '../output/format.js';
import { ProgressView } from '../output/progress.js';
import { clean } from '../output/table.js';
import { describeOperation, taskDetails, taskTable } from '../output/tasks.js';
import { watchTask } from '../watch.js';
import { intArg, plural, withContext } from './common.js';
import { resolveDevice } from './devices.js';

const STATES: TaskState[] = ['queued', 'sent', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'];

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
      const late = t.lateResult ? ` (the device later reported: ${t.lateResult.outcome})` : '';
      return new CliError(`task ${t.id} timed out: its deadline ${formatTimestamp(t.deadlineAt)} passed${why}${late}`, ExitCode.taskTimedOut);
    }
    default:
      return new CliError(`task ${t.id} is still ${t.state}`);
  }
}

function successLine(t: Task): string {
  const vm = t.operation.kind === 'vm.create' && t.vmId ? ` VM ID: ${t.vmId}.` : '';
  return `Task ${t.id} succeeded: ${describeOperation(t.operation)}.${vm}`;
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
    task = await watchTask(client, id, {
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
    `Task ${task.id} ${task.state}: ${describeOperation(task.operation)}${opts.target ? ` on ${opts.target}` : ''}.`,
  ];
  if (opts.wait) {
    if (!ctx.json) ctx.io.stdout.write(`${head.join('\n')}\n`);
    return followTask(ctx, client, task.id);
  }
  ctx.emit(task, () => [...head, `Follow it with: pallas tasks watch ${task.id}`].join('\n'));
}

interface LsOptions {
  device?: string;
  vm?: string;
  state?: TaskState;
  kind?: string;
  limit?: number;
  offset?: number;
}

async function ls(ctx: Context, opts: LsOptions): Promise<void> {
  const client = await ctx.client();
  const deviceId = opts.device === undefined ? undefined : (await resolveDevice(client, opts.device)).id;
  const page = await client.listTasks({ deviceId, vmId: opts.vm, state: opts.state, kind: opts.kind, limit: opts.limit, offset: opts.offset });
  const now = ctx.io.now();
  ctx.emit(page, () => {
    const shownTo = page.offset + page.items.length;
    const more = shownTo < page.total ? ` (more: --offset ${shownTo})` : '';
    const footer = `${page.items.length} of ${plural(page.total, 'task')}${more}`;
    return page.items.length > 0 ? `${taskTable(page.items, now)}\n${footer}` : footer;
  });
}

export function registerTasks(program: Command, io: Io): void {
  const tasks = program.command('tasks').alias('task').description('list, watch, cancel and retry tasks (changes on devices)');

  tasks
    .command('ls')
    .alias('list')
    .description('list tasks, newest first')
    .option('--device <device>', 'only tasks of this device (ID or exact name)')
    .option('--vm <vm-id>', 'only tasks on this VM')
    .addOption(new Option('--state <state>', 'only tasks in this state').choices(STATES))
    .option('--kind <kind>', 'only tasks of this kind: vm.create, vm.power, vm.update, vm.delete, vm.deploy')
    .option('--limit <n>', 'page size (server default 50)', intArg(1, MAX_PAGE))
    .option('--offset <n>', 'skip this many tasks', intArg(0))
    .action(withContext(io, ls));

  tasks
    .command('show')
    .description('show one task: operation, state, progress, error and timeline')
    .argument('<id>', 'task ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const task = await (await ctx.client()).getTask(id);
        ctx.emit(task, () => taskDetails(task, ctx.io.now()));
      }),
    );

  tasks
    .command('watch')
    .description('follow a task until it ends; exit 0 if it succeeded (see docs/cli.md for the other codes)')
    .argument('<id>', 'task ID')
    .action(withContext(io, async (ctx, id: string) => followTask(ctx, await ctx.client(), id)));

  tasks
    .command('cancel')
    .description('cancel a task (at once if queued; else the device is asked to stop it)')
    .argument('<id>', 'task ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const task = await (await ctx.client()).cancelTask(id);
        ctx.emit(task, () =>
          task.state === 'cancelled'
            ? `Cancelled task ${task.id}.`
            : `Cancel requested for task ${task.id} (${task.state}): the device stops it, or reports what it finished.\n` +
              `Follow it with: pallas tasks watch ${task.id}`,
        );
      }),
    );

  tasks
    .command('retry')
    .description('run a failed, cancelled or timed-out task again, as a new task')
    .argument('<id>', 'task ID')
    .option('--wait', 'follow the new task until it ends')
    .action(
      withContext(io, async (ctx, id: string, opts: { wait?: boolean }) => {
        const client = await ctx.client();
        const task = await client.retryTask(id);
        const lead = `Retrying task ${clean(task.retryOf ?? id)}: attempt ${task.attempt}.`;
        await reportTask(ctx, client, task, { ...opts, lead });
      }),
    );
}
