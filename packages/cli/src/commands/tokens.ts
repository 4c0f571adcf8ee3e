/** `pallas tokens …`: enrollment tokens, with which new devices register themselves. */
import { type Command, InvalidArgumentError } from 'commander';
import type { CreateEnrollmentToken, EnrollmentToken } from '@pallas/protocol';
import { parseDuration } from '@pallas/protocol/units';
import type { Io } from '../io.js';
import { formatRelative } from '../output/format.js';
import { clean, formatTable } from '../output/table.js';
import { fetchAll, intArg, plural, shellQuote, withContext } from './common.js';

/** Where the agent keeps its identity; the same path the agent documents as its default. */
const AGENT_STATE_DIR = '/var/lib/pallas-agent';

export function agentCommand(server: string, token: string): string {
  return `npx pallas-agent --manager ${shellQuote(server)} --token ${shellQuote(token)} --state-dir ${AGENT_STATE_DIR}`;
}

function ttlArg(value: string): number {
  const sec = parseDuration(value);
  if (sec === undefined) throw new InvalidArgumentError('expected a duration such as 24h, 30m, 7d or a number of seconds');
  return sec;
}

export function tokenStatus(t: EnrollmentToken, now: number): string {
  if (t.revoked) return 'revoked';
  if (Date.parse(t.expiresAt) <= now) return 'expired';
  if (t.uses >= t.maxUses) return 'used up';
  return 'active';
}

function isLoopback(server: string): boolean {
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

export function registerTokens(program: Command, io: Io): void {
  const tokens = program.command('tokens').alias('token').description('manage enrollment tokens for new devices');

  tokens
    .command('create')
    .description('create an enrollment token and print the agent command that uses it')
    .option('--name <name>', 'a label, e.g. the site or batch it is for')
    .option('--ttl <duration>', 'lifetime: 24h, 30m, 7d or seconds (server default 24h)', ttlArg)
    .option('--max-uses <n>', 'how many devices may enroll with it (server default 1)', intArg(1))
    .action(
      withContext(io, async (ctx, opts: { name?: string; ttl?: number; maxUses?: number }) => {
        const client = await ctx.client();
        const body: CreateEnrollmentToken = { name: opts.name, ttlSec: opts.ttl, maxUses: opts.maxUses };
        const created = await client.call('createEnrollmentToken', { body });
        const command = agentCommand(client.server, created.token);
        ctx.emit({ ...created, agentCommand: command }, () =>
          [
            `Created enrollment token ${created.id}${created.name ? ` '${clean(created.name)}'` : ''}: ` +
              `${plural(created.maxUses, 'use')}, expires ${formatRelative(created.expiresAt, ctx.io.now())}.`,
            'The token is shown only this once:',
            '',
            `  ${created.token}`,
            '',
            'On the device, run:',
            '',
            `  ${command}`,
          ].join('\n'),
        );
        if (isLoopback(client.server)) {
          ctx.note(`note: ${client.server} is a loopback address; use --server with a URL devices can reach.`);
        }
      }),
    );

  tokens
    .command('ls')
    .alias('list')
    .description('list enrollment tokens (their secrets are never shown again)')
    .action(
      withContext(io, async (ctx) => {
        const client = await ctx.client();
        const page = await fetchAll(client, 'listEnrollmentTokens');
        const now = ctx.io.now();
        ctx.emit(page, () =>
          [
            formatTable(
              ['ID', 'NAME', 'USES', 'EXPIRES', 'STATUS', 'CREATED BY'],
              page.items.map((t) => [t.id, t.name, `${t.uses}/${t.maxUses}`, formatRelative(t.expiresAt, now), tokenStatus(t, now), t.createdBy]),
            ),
            plural(page.total, 'token'),
          ].join('\n'),
        );
      }),
    );

  tokens
    .command('revoke')
    .alias('rm')
    .description('revoke an enrollment token so no more devices can enroll with it')
    .argument('<id>', 'token ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const client = await ctx.client();
        await client.call('revokeEnrollmentToken', { params: { id } });
        ctx.emit({ id, revoked: true }, () => `Revoked enrollment token ${id}.`);
      }),
    );
}
