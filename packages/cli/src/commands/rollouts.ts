/** `pallas rollouts …`: one operation to a group, a tag or devices, in waves that stop themselves when devices fail. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PAGE_LIMITS, ROLLOUT_DEFAULTS, type CreateRollout, type Rollout, type TaskOperation } from '@pallas/protocol';
import type { Context } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import type { Io } from '../io.js';
import { formatFields, formatTable } from '../output/table.js';
import { intArg, plural, withContext } from './common.js';
import { resolveDevice } from './resolve.js';

interface CreateOptions {
  group?: string; tag?: string; devices?: string; dynamic?: boolean;
  op?: string; agentUpdate?: string; patch?: string; power?: string;
  waves?: string; ramp?: string; maxInProgress?: number; retries?: number; deviceTimeout?: number;
  success?: number; soak?: number; errors?: string; onError?: 'pause' | 'abort'; deadline?: number; verify?: number; dryRun?: boolean;
}

const share = (v: string): number => {
  const n = v.endsWith('%') ? Number(v.slice(0, -1)) / 100 : Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a share from 0 to 1, or a percentage like 90%');
  return n;
};

/** The operation from exactly one of --op (JSON), --agent-update, --patch, --power. */
function operationOf(o: CreateOptions): TaskOperation {
  const given = [o.op, o.agentUpdate, o.patch, o.power].filter((x) => x !== undefined);
  if (given.length !== 1) throw new CliError('give exactly one operation: --agent-update <artifact>, --patch <artifact>, --power <vm-id>:<on|off|reset|shutdown> or --op <json>', ExitCode.usage);
  if (o.agentUpdate) return { kind: 'agent.update', artifactId: o.agentUpdate };
  if (o.patch) return { kind: 'device.patch', artifactId: o.patch };
  if (o.power) {
    const [vmId, action] = o.power.split(':');
    if (!vmId || !['on', 'off', 'reset', 'shutdown'].includes(action ?? '')) throw new CliError('--power takes <vm-id>:<on|off|reset|shutdown>', ExitCode.usage);
    return { kind: 'vm.power', vmId, action: action as 'on' };
  }
  try {
    return JSON.parse(o.op!) as TaskOperation;
  } catch {
    throw new CliError('--op must be a task operation as JSON, e.g. \'{"kind":"vm.create","spec":{…}}\'', ExitCode.usage);
  }
}

function wavesOf(o: CreateOptions): CreateRollout['waves'] {
  if (o.waves && o.ramp) throw new CliError('give --waves or --ramp, not both', ExitCode.usage);
  if (o.waves) return { sizes: o.waves.split(',').map((s) => (s.trim().endsWith('%') ? s.trim() : Number(s))) };
  if (o.ramp) {
    const [first, factor, cap] = o.ramp.split(',').map(Number);
    return { ramp: { first: first!, factor: factor!, ...(cap ? { cap } : {}) } };
  }
  return undefined;
}

function thresholdOf(o: CreateOptions): CreateRollout['errorThreshold'] {
  if (!o.errors && !o.onError) return undefined;
  const e = o.errors;
  return { ...(e === undefined ? {} : e.endsWith('%') ? { share: Number(e.slice(0, -1)) / 100 } : { count: Number(e) }), ...(o.onError ? { action: o.onError } : {}) };
}

const bar = (done: number, total: number, width = 20): string => {
  const n = total === 0 ? 0 : Math.round((done / total) * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
};

/** The rollout as people read it: state, then one line per wave. */
export function rolloutView(r: Rollout): string {
  const head = formatFields([
    ['ID', r.id], ['Name', r.name], ['State', r.reason ? `${r.state} (${r.reason})` : r.state], ['Operation', r.operation.kind],
    ['Target', r.target.groupId ? `group ${r.target.groupId}` : r.target.tag ? `tag ${r.target.tag}` : `${r.target.deviceCount} devices`],
    ['Membership', r.membership], ['Wave', `${r.currentWave} of ${r.waves.length}`],
    ['Devices', `${r.counts.total}: ${r.counts.succeeded} succeeded, ${r.counts.failed} failed, ${r.counts.active + r.counts.verifying} in progress, ${r.counts.pending} pending, ${r.counts.skipped} skipped`],
    ['Deadline', r.deadlineAt],
  ]);
  const waves = formatTable(['WAVE', 'SIZE', 'PROGRESS', 'OK', 'FAILED', 'RUNNING', 'PENDING', 'GATE'],
    r.waves.map((w) => [w.wave, w.size, bar(w.counts.succeeded + w.counts.failed + w.counts.skipped, w.counts.total), w.counts.succeeded, w.counts.failed, w.counts.active + w.counts.verifying, w.counts.pending, w.gateMetAt ? 'met' : w.startedAt ? 'open' : '-']));
  return `${head}\n\n${waves}`;
}

async function create(ctx: Context, name: string, o: CreateOptions): Promise<void> {
  const client = await ctx.client();
  const targets = [o.group, o.tag, o.devices].filter((x) => x !== undefined).length;
  if (targets !== 1) throw new CliError('give exactly one target: --group, --tag or --devices', ExitCode.usage);
  let deviceIds: string[] | undefined;
  if (o.devices) {
    deviceIds = [];
    for (const ref of o.devices.split(',').map((s) => s.trim()).filter(Boolean)) deviceIds.push((await resolveDevice(client, ref)).id);
  }
  const target = { ...(o.group ? { groupId: o.group } : {}), ...(o.tag ? { tag: o.tag } : {}), ...(deviceIds ? { deviceIds } : {}) };
  const waves = wavesOf(o);
  if (o.dryRun) {
    const plan = await client.call('planRollout', { body: { ...target, ...(waves ? { waves } : {}) } });
    ctx.emit(plan, () => `${plural(plan.total, 'device')} in ${plural(plan.waves.length, 'wave')}: ${plan.waves.join(', ')}`);
    return;
  }
  const threshold = thresholdOf(o);
  const body: CreateRollout = {
    name, operation: operationOf(o), ...target,
    ...(o.dynamic ? { membership: 'dynamic' } : {}),
    ...(waves ? { waves } : {}),
    ...(threshold ? { errorThreshold: threshold } : {}),
    ...(o.maxInProgress !== undefined ? { maxInProgress: o.maxInProgress } : {}),
    ...(o.retries !== undefined ? { retries: o.retries } : {}),
    ...(o.deviceTimeout !== undefined ? { deviceTimeoutSec: o.deviceTimeout } : {}),
    ...(o.success !== undefined ? { successShare: o.success } : {}),
    ...(o.soak !== undefined ? { soakSec: o.soak } : {}),
    ...(o.deadline !== undefined ? { deadlineSec: o.deadline } : {}),
    ...(o.verify !== undefined ? { verifySec: o.verify } : {}),
  };
  const r = await client.call('createRollout', { body });
  ctx.emit(r, () => `Started rollout ${r.id}: ${plural(r.counts.total, 'device')} in waves of ${r.waves.map((w) => w.size).join(', ')}.\nFollow it with: pallas rollouts watch ${r.id}`);
}

/** Follows a rollout until it ends or pauses; exit 0 when completed, 1 when paused or aborted. */
async function watch(ctx: Context, id: string): Promise<void> {
  const client = await ctx.client();
  const ended = (r: Rollout) => r.state !== 'running';
  let last = await client.call('getRollout', { params: { id } });
  const show = (r: Rollout) => {
    if (ctx.json) ctx.io.stdout.write(`${JSON.stringify(r)}\n`);
    else ctx.io.stdout.write(`${rolloutView(r)}\n\n`);
  };
  show(last);
  if (!ended(last)) {
    const stream = client.events({ rolloutId: id });
    try {
      for await (const m of stream) {
        if (m.type === 'reset') last = await client.call('getRollout', { params: { id } });
        else if (m.type === 'rollout') last = m.rollout;
        else continue;
        show(last);
        if (ended(last)) break;
      }
    } finally {
      stream.close();
    }
  }
  if (last.state === 'completed') return;
  throw new CliError(`rollout ${id} is ${last.state}${last.reason ? ` (${last.reason})` : ''}`, ExitCode.error);
}

export function registerRollouts(program: Command, io: Io): void {
  const rollouts = program.command('rollouts').alias('rollout').description('staged rollouts: one operation to many devices in waves, with gates and error thresholds');

  rollouts.command('create').description('start a rollout (see docs/rollouts.md for every parameter and its default)').argument('<name>', 'a name for people')
    .option('--group <group>', 'target: a group (ID or name)')
    .option('--tag <tag>', 'target: every device with this tag')
    .option('--devices <list>', 'target: comma-separated device IDs or exact names, in wave order')
    .option('--dynamic', 'devices that join the group or tag later get it too (until the deadline)')
    .option('--agent-update <artifact>', 'operation: update the agent from an agent artifact')
    .option('--patch <artifact>', 'operation: patch the host from a patch artifact')
    .option('--power <vm:action>', 'operation: power a VM, e.g. vm-100:off')
    .option('--op <json>', 'operation: any task operation as JSON')
    .option('--waves <sizes>', 'wave sizes, counts or percentages: 1,10%,50%')
    .option('--ramp <first,factor[,cap]>', `exponential waves (default ${JSON.stringify(ROLLOUT_DEFAULTS.waves)})`)
    .option('--max-in-progress <n>', `devices in progress at once (default ${ROLLOUT_DEFAULTS.maxInProgress})`, intArg(1))
    .option('--retries <n>', `new attempts per failed device (default ${ROLLOUT_DEFAULTS.retries})`, intArg(0, 10))
    .option('--device-timeout <sec>', `seconds each device's task has (default ${ROLLOUT_DEFAULTS.deviceTimeoutSec})`, intArg(10))
    .option('--success <share>', `share of a wave that must succeed before the next (default ${ROLLOUT_DEFAULTS.successShare})`, share)
    .option('--soak <sec>', 'seconds to wait after a wave passed its gate (default 0)', intArg(0))
    .option('--errors <n|pct%>', `error threshold: a count, or a share of finished devices (default ${ROLLOUT_DEFAULTS.errorShare * 100}%)`)
    .addOption(new Option('--on-error <action>', 'what the threshold does (default pause)').choices(['pause', 'abort']))
    .option('--deadline <sec>', `seconds until pending devices are skipped (default ${ROLLOUT_DEFAULTS.deadlineSec})`, intArg(60))
    .option('--verify <sec>', `seconds an updated device has to report healthy (default ${ROLLOUT_DEFAULTS.verifySec})`, intArg(10))
    .option('--dry-run', 'print the waves it would have, start nothing')
    .action(withContext(io, create));

  rollouts.command('ls').alias('list').description('list rollouts, newest first')
    .addOption(new Option('--state <state>', 'only in this state').choices(['running', 'paused', 'aborted', 'completed']))
    .option('--limit <n>', 'page size', intArg(1, PAGE_LIMITS.max))
    .action(withContext(io, async (ctx, o: { state?: Rollout['state']; limit?: number }) => {
      const page = await (await ctx.client()).call('listRollouts', { query: { state: o.state, limit: o.limit } });
      ctx.emit(page, () => `${formatTable(['ID', 'NAME', 'STATE', 'OPERATION', 'WAVE', 'OK', 'FAILED', 'PENDING', 'DEVICES'], page.items.map((r) => [r.id, r.name, r.reason ? `${r.state}:${r.reason}` : r.state, r.operation.kind, `${r.currentWave}/${r.waves.length}`, r.counts.succeeded, r.counts.failed, r.counts.pending, r.counts.total]))}\n${plural(page.total, 'rollout')}`);
    }));

  rollouts.command('show').description('a rollout with per-wave progress').argument('<id>', 'rollout ID')
    .option('--devices [state]', 'also list its devices (optionally only pending|active|verifying|succeeded|failed|skipped)')
    .action(withContext(io, async (ctx, id: string, o: { devices?: string | boolean }) => {
      const client = await ctx.client();
      const r = await client.call('getRollout', { params: { id } });
      if (!o.devices) return ctx.emit(r, () => rolloutView(r));
      const state = typeof o.devices === 'string' ? o.devices as 'failed' : undefined;
      const devices = await client.all('listRolloutDevices', { params: { id }, query: { ...(state ? { state } : {}) } });
      ctx.emit({ ...r, devices }, () => `${rolloutView(r)}\n\n${formatTable(['DEVICE', 'NAME', 'WAVE', 'STATE', 'TASK', 'ERROR'], devices.map((d) => [d.deviceId, d.name, d.wave, d.state, d.taskId, d.error ? `${d.error.code}: ${d.error.message}` : null]))}`);
    }));

  for (const [verb, route, what] of [['pause', 'pauseRollout', 'Paused'], ['resume', 'resumeRollout', 'Resumed'], ['abort', 'abortRollout', 'Aborted']] as const) {
    rollouts.command(verb).description(`${verb} a rollout${verb === 'abort' ? ' (queued tasks are cancelled; tasks on devices finish)' : ''}`).argument('<id>', 'rollout ID')
      .option('--reason <text>', 'why (kept in the audit log)')
      .action(withContext(io, async (ctx, id: string, o: { reason?: string }) => {
        const r = await (await ctx.client()).call(route, { params: { id }, body: { ...(o.reason ? { reason: o.reason } : {}) } });
        ctx.emit(r, () => `${what} rollout ${r.id}: ${r.state}.`);
      }));
  }

  rollouts.command('watch').description('follow a rollout wave by wave until it completes (exit 0), pauses or is aborted (exit 1)').argument('<id>', 'rollout ID')
    .action(withContext(io, watch));
}
