/** `pallas vms …`: a device's virtual machines. Every change is a task the device runs. */
import { Argument, type Command, InvalidArgumentError } from 'commander';
import { VM_LIMITS, type PowerAction, type VmDeploy, type VmPatch, type VmSpec } from '@pallas/protocol';
import type { Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { clean } from '../output/table.js';
import { vmTable } from '../output/tasks.js';
import { confirm, isInteractive } from '../prompt.js';
import { intArg, plural, withContext } from './common.js';
import { deviceLabel, resolveDevice, resolveVm } from './resolve.js';
import { reportTask, timeoutArg } from './task-report.js';

const POWER_ACTIONS: PowerAction[] = ['on', 'off', 'reset', 'shutdown'];
const { name: NAME, vcpus: VCPUS, memoryMB: MEMORY, diskGB: DISK } = VM_LIMITS;
const VM_NAME = new RegExp(NAME.pattern);
const NAME_RULE = `${NAME.minLength}-${NAME.maxLength} characters: letters, digits, . _ - and inner spaces`;

/** The protocol's own rule, checked here too so a bad name is a usage error before anything is sent. */
function vmNameArg(value: string): string {
  if (value.length < NAME.minLength || value.length > NAME.maxLength || !VM_NAME.test(value)) throw new InvalidArgumentError(NAME_RULE);
  return value;
}

/** A decimal number of GB within the protocol's VmSpec bounds. */
function diskArg(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > DISK.exclusiveMinimum) || n > DISK.maximum) {
    throw new InvalidArgumentError(`expected a size in GB, more than ${DISK.exclusiveMinimum} and at most ${DISK.maximum}`);
  }
  return n;
}

interface TaskFlags {
  timeout?: number;
  wait?: boolean;
  force?: boolean;
}

/** The query of a task-creating call: `force` only when asked, so older managers see no new field. */
const taskQuery = (opts: TaskFlags): { timeoutSec?: number; force?: boolean } => ({ timeoutSec: opts.timeout, ...(opts.force ? { force: true } : {}) });

interface DeployOptions extends TaskFlags {
  ova?: string;
  artifact?: string;
  name?: string;
}

function artifactIdArg(value: string): string {
  if (!/^art_[0-9A-Za-z_-]+$/.test(value)) throw new InvalidArgumentError('expected an artifact id (art_…; see pallas artifacts ls)');
  return value;
}

function ovaPathArg(value: string): string {
  // The path is on the device, not here: only its form can be checked.
  if (!value.startsWith('/')) throw new InvalidArgumentError('give the absolute path of the OVA on the device');
  return value;
}

interface CreateOptions extends TaskFlags {
  name: string;
  vcpus: number;
  memory: number;
  disk: number;
  network?: string;
  bootImage?: string;
}

interface UpdateOptions extends TaskFlags {
  name?: string;
  vcpus?: number;
  memory?: number;
}

/** The options every VM change takes. */
function taskFlags(cmd: Command): Command {
  return cmd
    .option('--timeout <duration>', 'give up if not done within this time from now, queueing included: 30m, 2h, 7d (server default 24h)', timeoutArg)
    .option('--wait', 'follow the task until it ends, with its progress; exit non-zero unless it succeeded')
    .option('--force', "send it even if the device's last report says it cannot succeed (too big for the host, a name taken, a VM that is on)");
}

export function registerVms(program: Command, io: Io): void {
  const vms = program.command('vms').alias('vm').description("list and change a device's virtual machines");

  vms
    .command('ls')
    .alias('list')
    .description("list a device's VMs (as the device last reported them)")
    .argument('<device>', 'device ID or exact name')
    .action(
      withContext(io, async (ctx: Context, ref: string) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        const list = await client.call('listVms', { params: { id: device.id } });
        ctx.emit(list, () => (list.length > 0 ? `${vmTable(list)}\n${plural(list.length, 'VM')}` : `No VMs on ${deviceLabel(device)}.`));
      }),
    );

  taskFlags(
    vms
      .command('create')
      .description('create a VM (powered off)')
      .argument('<device>', 'device ID or exact name')
      .requiredOption('--name <name>', `VM name: ${NAME_RULE}`, vmNameArg)
      .requiredOption('--vcpus <n>', `virtual CPUs (${VCPUS.minimum}-${VCPUS.maximum})`, intArg(VCPUS.minimum, VCPUS.maximum))
      .requiredOption('--memory <MiB>', `memory in MiB (${MEMORY.minimum}-${MEMORY.maximum})`, intArg(MEMORY.minimum, MEMORY.maximum))
      .requiredOption('--disk <GB>', 'size of the first disk in decimal GB', diskArg)
      .option('--network <name>', 'network (port group, bridge) of the first NIC (default: the host\'s first)')
      .option('--boot-image <path>', 'ISO or disk image to boot from (default: none)'),
  ).action(
    withContext(io, async (ctx: Context, ref: string, opts: CreateOptions) => {
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const spec: VmSpec = { name: opts.name, vcpus: opts.vcpus, memoryMB: opts.memory, diskGB: opts.disk };
      if (opts.network !== undefined) spec.network = opts.network;
      if (opts.bootImage !== undefined) spec.bootImage = opts.bootImage;
      const task = await client.call('createVm', { params: { id: device.id }, body: spec, query: taskQuery(opts) });
      await reportTask(ctx, client, task, { wait: opts.wait, target: deviceLabel(device) });
    }),
  );

  taskFlags(
    vms
      .command('deploy')
      .description('deploy a VM (powered off) from an OVA: a file on the device, or an ova artifact the agent downloads')
      .argument('<device>', 'device ID or exact name')
      .option('--ova <path>', 'absolute path of the OVA on the device (the agent reads it there)', ovaPathArg)
      .option('--artifact <id>', 'an ova artifact uploaded with pallas artifacts upload (the agent downloads and verifies it)', artifactIdArg)
      .option('--name <name>', "VM name (default: the OVF's virtual system name)", vmNameArg),
  ).action(
    withContext(io, async (ctx: Context, ref: string, opts: DeployOptions) => {
      if ((opts.ova === undefined) === (opts.artifact === undefined)) throw new UsageError('give exactly one of --ova <path on the device> or --artifact <id>');
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const request: VmDeploy = { source: opts.ova !== undefined ? { kind: 'file', path: opts.ova } : { kind: 'artifact', artifactId: opts.artifact! } };
      if (opts.name !== undefined) request.name = opts.name;
      const task = await client.call('deployVm', { params: { id: device.id }, body: request, query: taskQuery(opts) });
      await reportTask(ctx, client, task, { wait: opts.wait, target: deviceLabel(device) });
    }),
  );

  taskFlags(
    vms
      .command('power')
      .description('power a VM on or off, reset it, or shut its guest down cleanly')
      .argument('<device>', 'device ID or exact name')
      .argument('<vm>', 'VM ID or exact name')
      .addArgument(new Argument('<action>', 'on, off (hard), reset (hard), shutdown (guest OS)').choices(POWER_ACTIONS)),
  ).action(
    withContext(io, async (ctx: Context, ref: string, vmRef: string, action: PowerAction, opts: TaskFlags) => {
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const vm = await resolveVm(client, device, vmRef);
      const task = await client.call('powerVm', { params: { id: device.id, vmId: vm.id }, body: { action }, query: taskQuery(opts) });
      await reportTask(ctx, client, task, { wait: opts.wait, target: deviceLabel(device) });
    }),
  );

  taskFlags(
    vms
      .command('update')
      .description('rename a VM, or change its vCPUs and memory (only while it is off)')
      .argument('<device>', 'device ID or exact name')
      .argument('<vm>', 'VM ID or exact name')
      .option('--name <name>', 'new name', vmNameArg)
      .option('--vcpus <n>', `virtual CPUs (${VCPUS.minimum}-${VCPUS.maximum})`, intArg(VCPUS.minimum, VCPUS.maximum))
      .option('--memory <MiB>', `memory in MiB (${MEMORY.minimum}-${MEMORY.maximum})`, intArg(MEMORY.minimum, MEMORY.maximum)),
  ).action(
    withContext(io, async (ctx: Context, ref: string, vmRef: string, opts: UpdateOptions) => {
      const patch: VmPatch = {};
      if (opts.name !== undefined) patch.name = opts.name;
      if (opts.vcpus !== undefined) patch.vcpus = opts.vcpus;
      if (opts.memory !== undefined) patch.memoryMB = opts.memory;
      if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give --name, --vcpus or --memory');
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const vm = await resolveVm(client, device, vmRef);
      const task = await client.call('updateVm', { params: { id: device.id, vmId: vm.id }, body: patch, query: taskQuery(opts) });
      await reportTask(ctx, client, task, { wait: opts.wait, target: deviceLabel(device) });
    }),
  );

  taskFlags(
    vms
      .command('rm')
      .alias('delete')
      .description('delete a powered-off VM and its disks')
      .argument('<device>', 'device ID or exact name')
      .argument('<vm>', 'VM ID or exact name')
      .option('-y, --yes', 'do not ask for confirmation'),
  ).action(
    withContext(io, async (ctx: Context, ref: string, vmRef: string, opts: TaskFlags & { yes?: boolean }) => {
      const client = await ctx.client();
      const device = await resolveDevice(client, ref);
      const vm = await resolveVm(client, device, vmRef);
      const label = `VM '${clean(vm.name)}' (${clean(vm.id)}) on ${deviceLabel(device)}`;
      if (!opts.yes) {
        if (!isInteractive(ctx.io)) throw new UsageError(`refusing to delete ${label} without confirmation: pass --yes`);
        if (!(await confirm(ctx.io, `Delete ${label} and its disks?`))) throw new CliError('aborted: nothing was changed');
      }
      const task = await client.call('deleteVm', { params: { id: device.id, vmId: vm.id }, query: taskQuery(opts) });
      await reportTask(ctx, client, task, { wait: opts.wait, target: deviceLabel(device) });
    }),
  );
}
