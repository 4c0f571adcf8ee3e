/** `pallas groups …`: named sets of devices — fixed lists or saved queries — to target tasks and rollouts. */
import { type Command, Option } from 'commander';
import { PAGE_LIMITS, type Group, type GroupQuery } from '@pallas/protocol';
import type { Context } from '../context.js';
import type { Io } from '../io.js';
import { formatFields, formatTable } from '../output/table.js';
import { intArg, plural, withContext } from './common.js';
import { resolveDevice } from './resolve.js';

interface QueryOptions { tag?: string[]; hypervisor?: string; agentVersion?: string; hostBuild?: string; presence?: string; status?: string; namePattern?: string }

/** The saved query the flags describe, or undefined when no flag was given. */
function queryOf(o: QueryOptions): GroupQuery | undefined {
  const q: GroupQuery = {
    ...(o.tag?.length ? { tags: o.tag } : {}),
    ...(o.hypervisor ? { hypervisor: o.hypervisor as GroupQuery['hypervisor'] } : {}),
    ...(o.agentVersion ? { agentVersion: o.agentVersion } : {}),
    ...(o.hostBuild ? { hostBuild: o.hostBuild } : {}),
    ...(o.presence ? { presence: o.presence as GroupQuery['presence'] } : {}),
    ...(o.status ? { status: o.status as GroupQuery['status'] } : {}),
    ...(o.namePattern ? { namePattern: o.namePattern } : {}),
  };
  return Object.keys(q).length > 0 ? q : undefined;
}

function describeQuery(q: GroupQuery | null): string {
  if (!q) return 'fixed list';
  return Object.entries(q).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(' ');
}

function details(g: Group): string {
  return formatFields([['ID', g.id], ['Name', g.name], ['Description', g.description], ['Kind', g.kind], ['Query', g.query ? describeQuery(g.query) : null], ['Devices', g.deviceCount], ['Created', `${g.createdAt} by ${g.createdBy}`]]);
}

const addQueryOptions = (c: Command): Command =>
  c.option('--tag <tag>', 'devices with this tag (repeat: all of them)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--hypervisor <kind>', 'hypervisor kind').choices(['sim', 'qemu', 'esxi']))
    .option('--agent-version <v>', 'agent version, exactly')
    .option('--host-build <b>', 'hypervisor build, exactly')
    .addOption(new Option('--presence <p>', 'online or offline').choices(['online', 'offline']))
    .addOption(new Option('--status <s>', 'device status').choices(['active', 'pending', 'blocked']))
    .option('--name-pattern <glob>', 'device name, case-insensitive; * and ? wildcards');

async function deviceIdsOf(ctx: Context, refs: string | undefined): Promise<string[] | undefined> {
  if (refs === undefined) return undefined;
  const client = await ctx.client();
  const ids: string[] = [];
  for (const ref of refs.split(',').map((s) => s.trim()).filter(Boolean)) ids.push((await resolveDevice(client, ref)).id);
  return ids;
}

export function registerGroups(program: Command, io: Io): void {
  const groups = program.command('groups').alias('group').description('device groups: fixed lists or saved queries, to target tasks and rollouts');

  groups.command('ls').alias('list').description('list groups with their device counts')
    .action(withContext(io, async (ctx) => {
      const page = await (await ctx.client()).call('listGroups', { query: { limit: PAGE_LIMITS.max } });
      ctx.emit(page, () => `${formatTable(['ID', 'NAME', 'DEVICES', 'KIND', 'QUERY'], page.items.map((g) => [g.id, g.name, g.deviceCount, g.kind, describeQuery(g.query)]))}\n${plural(page.total, 'group')}`);
    }));

  groups.command('show').description('show a group').argument('<group>', 'group ID or name')
    .action(withContext(io, async (ctx, ref: string) => {
      const g = await (await ctx.client()).call('getGroup', { params: { id: ref } });
      ctx.emit(g, () => details(g));
    }));

  addQueryOptions(groups.command('create').description('create a group: --devices a,b,c for a fixed list, or query flags for a saved query').argument('<name>', 'group name'))
    .option('--devices <list>', 'comma-separated device IDs or exact names (a fixed list)')
    .option('--description <text>', 'what the group is for')
    .action(withContext(io, async (ctx, name: string, o: QueryOptions & { devices?: string; description?: string }) => {
      const deviceIds = await deviceIdsOf(ctx, o.devices);
      const query = queryOf(o);
      const g = await (await ctx.client()).call('createGroup', { body: { name, ...(o.description ? { description: o.description } : {}), ...(deviceIds ? { deviceIds } : {}), ...(query ? { query } : {}) } });
      ctx.emit(g, () => `Created group ${g.name} (${g.id}): ${plural(g.deviceCount, 'device')}.`);
    }));

  addQueryOptions(groups.command('update').description("rename a group, or replace its list (--devices) or its query (query flags)").argument('<group>', 'group ID or name'))
    .option('--name <name>', 'new name')
    .option('--devices <list>', 'the new fixed list')
    .option('--description <text>', 'new description')
    .action(withContext(io, async (ctx, ref: string, o: QueryOptions & { name?: string; devices?: string; description?: string }) => {
      const deviceIds = await deviceIdsOf(ctx, o.devices);
      const query = queryOf(o);
      const g = await (await ctx.client()).call('updateGroup', { params: { id: ref }, body: { ...(o.name ? { name: o.name } : {}), ...(o.description ? { description: o.description } : {}), ...(deviceIds ? { deviceIds } : {}), ...(query ? { query } : {}) } });
      ctx.emit(g, () => `Updated group ${g.name}: ${plural(g.deviceCount, 'device')}.`);
    }));

  groups.command('rm').alias('delete').description('delete a group (refused while a rollout targets it)').argument('<group>', 'group ID or name')
    .action(withContext(io, async (ctx, ref: string) => {
      await (await ctx.client()).call('deleteGroup', { params: { id: ref } });
      ctx.emit({ deleted: ref }, () => `Deleted group ${ref}.`);
    }));

  groups.command('members').alias('devices').description("a group's devices now").argument('<group>', 'group ID or name')
    .option('--limit <n>', 'page size (server default 50)', intArg(1, PAGE_LIMITS.max))
    .action(withContext(io, async (ctx, ref: string, o: { limit?: number }) => {
      const page = await (await ctx.client()).call('listGroupMembers', { params: { id: ref }, query: { limit: o.limit } });
      ctx.emit(page, () => `${formatTable(['ID', 'NAME', 'PRESENCE', 'AGENT', 'TAGS'], page.items.map((d) => [d.id, d.name, d.presence, d.facts?.agentVersion, d.tags.join(',')]))}\n${page.items.length} of ${plural(page.total, 'device')}`);
    }));
}
