/** `pallas api-tokens …`: named tokens for scripts and CI (`PALLAS_TOKEN=pat_… pallas …`). */
import { Argument, type Command } from 'commander';
import type { ApiToken, CreateApiToken, Role } from '@pallas/protocol';
import type { Io } from '../io.js';
import { formatRelative } from '../output/format.js';
import { clean, formatTable } from '../output/table.js';
import { fetchAll, intArg, plural, withContext } from './common.js';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];

export function apiTokenStatus(t: ApiToken, now: number): string {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= now) return 'expired';
  return 'active';
}

export function registerApiTokens(program: Command, io: Io): void {
  const tokens = program.command('api-tokens').alias('api-token').description('manage API tokens for automation (use one as PALLAS_TOKEN)');

  tokens
    .command('create')
    .description('create an API token; its secret is printed only this once')
    .argument('<name>', 'what it is for, e.g. ci-deploy')
    .addArgument(new Argument('[role]', 'its role, at most your own (default: your role)').choices(ROLES))
    .option('--expires-in-days <n>', 'days until it stops working (default: never)', intArg(1, 3650))
    .action(
      withContext(io, async (ctx, name: string, role: Role | undefined, opts: { expiresInDays?: number }) => {
        const client = await ctx.client();
        const body: CreateApiToken = { name, ...(role ? { role } : {}), ...(opts.expiresInDays ? { expiresInDays: opts.expiresInDays } : {}) };
        const created = await client.call('createApiToken', { body });
        ctx.emit(created, () =>
          [
            `Created API token ${created.id} '${clean(created.name)}' (${created.role}), ` +
              (created.expiresAt ? `expires ${formatRelative(created.expiresAt, ctx.io.now())}.` : 'never expires.'),
            'The token is shown only this once:',
            '',
            `  ${created.token}`,
            '',
            'Use it as: PALLAS_TOKEN=<token> pallas …  or  Authorization: Bearer <token>',
          ].join('\n'),
        );
      }),
    );

  tokens
    .command('ls')
    .alias('list')
    .description('list your API tokens (admins: --all for everyone\'s); secrets are never shown')
    .option('--all', "every user's tokens (admin)")
    .action(
      withContext(io, async (ctx, opts: { all?: boolean }) => {
        const client = await ctx.client();
        const page = await fetchAll(client, 'listApiTokens', { query: opts.all ? { all: true } : {} });
        const now = ctx.io.now();
        ctx.emit(page, () =>
          [
            formatTable(
              ['ID', 'NAME', 'USER', 'ROLE', 'EXPIRES', 'LAST USED', 'STATUS'],
              page.items.map((t) => [
                t.id, t.name, t.username, t.role, t.expiresAt ? formatRelative(t.expiresAt, now) : 'never',
                t.lastUsedAt ? formatRelative(t.lastUsedAt, now) : 'never', apiTokenStatus(t, now),
              ]),
            ),
            plural(page.total, 'token'),
          ].join('\n'),
        );
      }),
    );

  tokens
    .command('revoke')
    .alias('rm')
    .description('revoke an API token: it stops working at once')
    .argument('<id>', 'token ID')
    .action(
      withContext(io, async (ctx, id: string) => {
        const client = await ctx.client();
        await client.call('revokeApiToken', { params: { id } });
        ctx.emit({ id, revoked: true }, () => `Revoked API token ${id}.`);
      }),
    );
}
