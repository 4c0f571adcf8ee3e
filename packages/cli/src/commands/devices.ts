/** `pallas devices …`: list, inspect, rename, tag and decommission devices. */
import { type Command, Option } from 'commander';
import { PAGE_LIMITS, PRESENCES, type Device, type DeviceHistory, type DeviceQuery, type DeviceStatus, type Presence } from '@pallas/protocol';
import { formatDuration, formatGB, formatMiB, presenceInWords } from '@pallas/protocol/units';
import type { Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { formatAsOf, formatRelative, formatTimestamp } from '../output/format.js';
import { clean, formatFields, formatTable } from '../output/table.js';
import { vmTable } from '../output/tasks.js';
import { confirm, isInteractive } from '../prompt.js';
import { fetchAll, intArg, plural, withContext } from './common.js';
import { registerDeviceUpdates } from './device-updates.js';
import { resolveDevice } from './resolve.js';

function hypervisor(d: Device): string {
  return d.facts ? `${d.facts.hypervisor.kind} ${d.facts.hypervisor.version}`.trim() : '-';
}

function deviceTable(devices: Device[], now: number): string {
  return formatTable(
    ['ID', 'NAME', 'PRESENCE', 'HYPERVISOR', 'VMS', 'AGENT', 'LAST SEEN', 'TAGS'],
    devices.map((d) => [
      d.id,
      d.name,
      // A device that is not simply active says so where operators look first.
      d.status && d.status !== 'active' ? `${d.presence} (${d.status})` : d.flags?.length ? `${d.presence} (!)` : d.presence,
      hypervisor(d),
      d.vms.length,
      d.facts?.agentVersion,
      formatRelative(d.lastSeenAt, now),
      d.tags.join(','),
    ]),
  );
}

/**
 * What a device reported is live only while it is online; from an unresponsive or offline
 * device it is the last report, and says when that was (docs/cli.md).
 */
function asOf(d: Device, now: number): string | undefined {
  return d.presence === 'online' ? undefined : `as of ${formatAsOf(d.lastSeenAt, now)}`;
}

const DAY_MS = 24 * 3600_000;

/** "avg 23 %, peak 87 %" over a history's points (weighted by reports). */
function usageInWords(h: DeviceHistory | undefined, pick: (p: DeviceHistory['points'][number]) => { min: number; avg: number; max: number } | undefined, unit: string): string | undefined {
  let weighted = 0;
  let samples = 0;
  let peak = -Infinity;
  for (const p of h?.points ?? []) {
    const v = pick(p);
    if (!v) continue;
    weighted += v.avg * p.samples;
    samples += p.samples;
    peak = Math.max(peak, v.max);
  }
  return samples === 0 ? undefined : `avg ${(weighted / samples).toFixed(0)}${unit}, peak ${peak.toFixed(0)}${unit}`;
}

function deviceDetails(d: Device, now: number, history?: DeviceHistory): string {
  const f = d.facts;
  const stale = asOf(d, now);
  const suffix = stale ? ` (${stale})` : '';
  const cpu = f
    ? [f.cpu.model, `${plural(f.cpu.cores, 'core')}`, f.cpu.mhz ? `${f.cpu.mhz} MHz` : '', f.cpu.usagePct !== undefined ? `${f.cpu.usagePct.toFixed(0)}% used${suffix}` : '']
        .filter(Boolean)
        .join(', ')
    : undefined;
  const memory = f
    ? f.memory.usedMB !== undefined
      ? `${formatMiB(f.memory.usedMB)} used of ${formatMiB(f.memory.totalMB)}${suffix}`
      : formatMiB(f.memory.totalMB)
    : undefined;
  const lines = [
    formatFields([
      ['ID', d.id],
      ['Name', d.name],
      ['Presence', `${d.presence} (last seen ${formatRelative(d.lastSeenAt, now)}${d.lastSeenAt ? `, at ${formatTimestamp(d.lastSeenAt)}` : ''})`],
      ['Presence, 24 h', history ? presenceInWords(history.presenceSummary, (Date.parse(history.to) - Date.parse(history.from)) / 1000) : undefined],
      ['CPU, 24 h', usageInWords(history, (p) => p.cpuPct, ' %')],
      ['Memory used, 24 h', usageInWords(history, (p) => p.memoryUsedMB, ' MiB')],
      ['Status', d.status],
      ['Flags', d.flags && d.flags.length > 0 ? d.flags.join(', ') : undefined],
      ['Tags', d.tags.length > 0 ? d.tags.join(', ') : '(none)'],
      ['Enrolled', formatTimestamp(d.enrolledAt)],
      ['Hostname', f?.hostname],
      ['Model', f?.model],
      ['Hypervisor', f ? `${hypervisor(d)}${f.hypervisor.build ? ` (build ${f.hypervisor.build})` : ''}` : 'not reported yet'],
      ['CPU', cpu],
      ['Memory', memory],
      ['Networks', f ? f.networks.join(', ') || '(none)' : undefined],
      ['Agent', f ? `${f.agentVersion} (up ${formatDuration(f.agentUptimeSec)})` : undefined],
      ['Host uptime', f ? formatDuration(f.uptimeSec) : undefined],
    ]),
  ];
  if (f && f.datastores.length > 0) {
    lines.push('', 'Datastores:');
    lines.push(
      indent(
        formatTable(
          ['NAME', 'CAPACITY', 'FREE'],
          f.datastores.map((ds) => [ds.name, formatGB(ds.capacityGB), formatGB(ds.freeGB)]),
        ),
      ),
    );
  }
  lines.push('', d.vms.length > 0 ? `Virtual machines (${d.vms.length}${stale ? `, ${stale}` : ''}):` : `Virtual machines: none${suffix}`);
  if (d.vms.length > 0) {
    lines.push(indent(vmTable(d.vms)));
  }
  return lines.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

interface LsOptions {
  presence?: Presence | 'pending';
  status?: DeviceStatus;
  name?: string;
  tag?: string;
  limit?: number;
  offset?: number;
  all?: boolean;
}

async function ls(ctx: Context, opts: LsOptions): Promise<void> {
  const client = await ctx.client();
  // "pending" is a status, not a presence; the flag accepts it because that is where people look.
  const status = opts.status ?? (opts.presence === 'pending' ? 'pending' : undefined);
  const presence = opts.presence === 'pending' ? undefined : opts.presence;
  const filter: DeviceQuery = { presence, status, name: opts.name, tag: opts.tag };
  const page = opts.all
    ? await fetchAll(client, 'listDevices', { query: filter }, opts.limit)
    : await client.call('listDevices', { query: { ...filter, limit: opts.limit, offset: opts.offset } });
  const now = ctx.io.now();
  ctx.emit(page, () => {
    const shownTo = page.offset + page.items.length;
    const more = !opts.all && shownTo < page.total ? ` (more: --offset ${shownTo}, or --all)` : '';
    const footer = `${page.items.length} of ${plural(page.total, 'device')}${more}`;
    return page.items.length > 0 ? `${deviceTable(page.items, now)}\n${footer}` : footer;
  });
  warnDuplicateNames(ctx, page.items);
}

/** A note on stderr for each shown device whose name another device has too, with the way out. */
function warnDuplicateNames(ctx: Context, devices: readonly Device[]): void {
  const shared = [...new Set(devices.filter((d) => d.flags.includes('duplicate_name')).map((d) => d.name))];
  for (const name of shared.slice(0, 5)) {
    ctx.note(`warning: more than one device is named '${clean(name)}'; give each its own name with \`pallas devices rename <device-id> <new-name>\``);
  }
  if (shared.length > 5) ctx.note(`warning: ${shared.length - 5} more names are shared by several devices`);
}

interface TagOptions {
  add?: boolean;
  remove?: boolean;
  clear?: boolean;
}

/** The device's new tag list; --add/--remove read-modify-write (last writer wins). */
function newTags(current: string[], given: string[], opts: TagOptions): string[] {
  const modes = [opts.add, opts.remove, opts.clear].filter(Boolean).length;
  if (modes > 1) throw new UsageError('use only one of --add, --remove and --clear');
  if (opts.clear) {
    if (given.length > 0) throw new UsageError('--clear takes no tags');
    return [];
  }
  if (given.length === 0) throw new UsageError('give at least one tag (or --clear to remove them all)');
  if (opts.add) return [...new Set([...current, ...given])];
  if (opts.remove) return current.filter((t) => !given.includes(t));
  return [...new Set(given)];
}

export function registerDevices(program: Command, io: Io): void {
  const devices = program.command('devices').alias('device').description('list and manage devices');

  devices
    .command('ls')
    .alias('list')
    .description('list devices')
    .addOption(new Option('--presence <state>', 'only online, unresponsive (connected but missing its status reports) or offline devices (pending: same as --status pending)').choices([...PRESENCES, 'pending']))
    .addOption(new Option('--status <status>', 'only active, pending (awaiting approval) or blocked devices').choices(['active', 'pending', 'blocked']))
    .option('--name <substring>', 'only devices whose name contains this (case-insensitive)')
    .option('--tag <tag>', 'only devices with this tag')
    .option('--limit <n>', 'page size (server default 50; with --all, the page size used)', intArg(1, PAGE_LIMITS.max))
    .option('--offset <n>', 'skip this many devices', intArg(0))
    .option('--all', 'fetch every page')
    .action(withContext(io, ls));

  devices
    .command('show')
    .description('show one device: host facts and virtual machines')
    .argument('<device>', 'device ID or exact name')
    .action(
      withContext(io, async (ctx, ref: string) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        // The last 24 h of presence in words; a manager without history (older) leaves it out.
        const now = ctx.io.now();
        const history = await client.call('getDeviceHistory', {
          params: { id: device.id }, query: { from: new Date(now - DAY_MS).toISOString(), to: new Date(now).toISOString(), step: 3600 },
        }).catch(() => undefined);
        const presenceHistory = history && { from: history.from, to: history.to, summary: history.presenceSummary };
        ctx.emit(presenceHistory ? { ...device, presenceHistory } : device, () => deviceDetails(device, now, history));
        warnDuplicateNames(ctx, [device]);
      }),
    );

  devices
    .command('rename')
    .description('rename a device')
    .argument('<device>', 'device ID or exact name')
    .argument('<new-name>', 'the new name')
    .action(
      withContext(io, async (ctx, ref: string, name: string) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        const updated = await client.call('updateDevice', { params: { id: device.id }, body: { name } });
        ctx.emit(updated, () => `Renamed device '${clean(device.name)}' to '${clean(updated.name)}' (${updated.id}).`);
        warnDuplicateNames(ctx, [updated]);
      }),
    );

  devices
    .command('tag')
    .description("set a device's tags (replaces them, unless --add or --remove)")
    .argument('<device>', 'device ID or exact name')
    .argument('[tags...]', 'tags, e.g. site=lyon or rack/3')
    .option('--add', 'add these tags to the current ones')
    .option('--remove', 'remove these tags from the current ones')
    .option('--clear', 'remove all tags')
    .action(
      withContext(io, async (ctx, ref: string, tags: string[], opts: TagOptions) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        const updated = await client.call('updateDevice', { params: { id: device.id }, body: { tags: newTags(device.tags, tags, opts) } });
        ctx.emit(updated, () => `Device '${clean(updated.name)}' tags: ${updated.tags.length > 0 ? updated.tags.map(clean).join(', ') : '(none)'}`);
      }),
    );

  for (const [name, route, description, done] of [
    ['approve', 'approveDevice', 'approve a pending device (manager started with --require-approval)', 'Approved'],
    ['block', 'blockDevice', 'block a device: disconnect it now and refuse its credential until unblocked', 'Blocked'],
    ['unblock', 'unblockDevice', 'unblock a blocked device', 'Unblocked'],
    ['rotate', 'rotateDeviceCredential', 'send a device a new credential (the old one works until the device connects with the new one)', 'Started credential rotation for'],
  ] as const) {
    devices
      .command(name)
      .description(description)
      .argument('<device>', 'device ID or exact name')
      .action(
        withContext(io, async (ctx, ref: string) => {
          const client = await ctx.client();
          const device = await resolveDevice(client, ref);
          const updated = await client.call(route, { params: { id: device.id } });
          ctx.emit(updated, () => `${done} device '${clean(updated.name)}' (${updated.id}); status ${updated.status}.`);
        }),
      );
  }

  devices
    .command('rm')
    .alias('decommission')
    .description('decommission a device (remove it from the fleet)')
    .argument('<device>', 'device ID or exact name')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      withContext(io, async (ctx, ref: string, opts: { yes?: boolean }) => {
        const client = await ctx.client();
        const device = await resolveDevice(client, ref);
        const label = `'${clean(device.name)}' (${device.id})`;
        if (!opts.yes) {
          if (!isInteractive(ctx.io)) throw new UsageError(`refusing to decommission device ${label} without confirmation: pass --yes`);
          const ok = await confirm(ctx.io, `Decommission device ${label}? It will be removed from the fleet.`);
          if (!ok) throw new CliError('aborted: nothing was changed');
        }
        await client.call('decommissionDevice', { params: { id: device.id } });
        ctx.emit({ id: device.id, name: device.name, decommissioned: true }, () => `Decommissioned device ${label}.`);
      }),
    );

  registerDeviceUpdates(devices, io);
}
