/** `pallas tasks …`: list, inspect, watch, cancel and retry tasks (every change on a device is one). */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PAGE_LIMITS, TASK_KINDS, TASK_STATES, type TaskState } from '@pallas/protocol';
import type { Context } from '../context.js';
import type { Io } from '../io.js';
import { clean } from '../output/table.js';
import { taskDetails, taskTable } from '../output/tasks.js';
import { intArg, plural, withContext } from './common.js';
import { resolveDevice } from './resolve.js';
import { followTask, reportTask } from './task-report.js';


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
  const page = await client.call('listTasks', { query: { deviceId, vmId: opts.vm, state: opts.state, kind: opts.kind, limit: opts.limit, offset: opts.offset } });
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
    .addOption(new Option('--state <state>', 'only tasks in this state').choices(TASK_STATES))
    .option('--kind <kind>', `only tasks of this kind: ${TASK_KINDS.join(', ')}`)
    .option('--limit <n>', 'page size (server default 50)', intArg(1, PAGE_LIMITS.max))
    .option('--offset <n>', 'skip this many tasks', intArg(0))
    .action(withContext(io, ls));

  tasks
    .command('show')
    .description('show one task: operation, state, progress, error and timeline')
    .argument('<id>', 'task ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const task = await (await ctx.client()).call('getTask', { params: { id } });
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
        const task = await (await ctx.client()).call('cancelTask', { params: { id } });
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
        const task = await client.call('retryTask', { params: { id } });
        const lead = `Retrying task ${clean(task.retryOf ?? id)}: attempt ${task.attempt}.`;
        await reportTask(ctx, client, task, { ...opts, lead });
      }),
    );
}
