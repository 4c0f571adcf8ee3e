/** `pallas users …`: manage operator accounts (the API allows this to admins only). */
import { Argument, type Command, Option } from 'commander';
import type { Role, User } from '@pallas/protocol';
import type { PallasClient } from '@pallas/client';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import type { Io } from '../io.js';
import { formatTimestamp } from '../output/format.js';
import { clean, formatTable } from '../output/table.js';
import { isInteractive, readSecret } from '../prompt.js';
import { fetchAll, plural, withContext } from './common.js';

const ROLES: Role[] = ['admin', 'operator', 'viewer'];

/** A user by ID or username. Accounts are few, so one listing beats guessing which one it is. */
export async function resolveUser(client: PallasClient, ref: string): Promise<User> {
  const items = await client.all('listUsers');
  const user = items.find((u) => u.id === ref) ?? items.find((u) => u.username === ref);
  if (!user) throw new CliError(`no user with ID or username '${clean(ref)}'`);
  return user;
}

/**
 * A new password: the flag, else typed twice on a terminal, else stdin's first line.
 * PALLAS_PASSWORD is deliberately not used: it is the operator's own login password.
 */
async function newPassword(ctx: Context, flag: string | undefined, username: string): Promise<string> {
  if (flag !== undefined) return flag;
  const first = await readSecret(ctx.io, `New password for ${username}: `);
  if (isInteractive(ctx.io)) {
    const again = await readSecret(ctx.io, 'Repeat it: ');
    if (again !== first) throw new CliError('the passwords do not match');
  }
  return first;
}

export function registerUsers(program: Command, io: Io): void {
  const users = program.command('users').alias('user').description('manage users (admin only)');

  users
    .command('ls')
    .alias('list')
    .description('list users')
    .action(
      withContext(io, async (ctx) => {
        const client = await ctx.client();
        const page = await fetchAll(client, 'listUsers');
        ctx.emit(page, () =>
          [
            formatTable(
              ['ID', 'USERNAME', 'ROLE', 'CREATED'],
              page.items.map((u) => [u.id, u.username, u.role, formatTimestamp(u.createdAt)]),
            ),
            plural(page.total, 'user'),
          ].join('\n'),
        );
      }),
    );

  users
    .command('add')
    .description('create a user')
    .argument('<username>', 'letters, digits and . _ @ -')
    .addOption(new Option('--role <role>', 'what the user may do').choices(ROLES).makeOptionMandatory())
    .option('--password <password>', 'initial password (default: typed twice on a terminal, or the first line of stdin)')
    .action(
      withContext(io, async (ctx, username: string, opts: { role: Role; password?: string }) => {
        const client = await ctx.client();
        const password = await newPassword(ctx, opts.password, username);
        const user = await client.call('createUser', { body: { username, password, role: opts.role } });
        ctx.emit(user, () => `Created user ${clean(user.username)} (${user.role}), ID ${user.id}.`);
      }),
    );

  users
    .command('rm')
    .alias('delete')
    .description('delete a user')
    .argument('<user>', 'user ID or username')
    .action(
      withContext(io, async (ctx, ref: string) => {
        const client = await ctx.client();
        const user = await resolveUser(client, ref);
        await client.call('deleteUser', { params: { id: user.id } });
        ctx.emit({ id: user.id, username: user.username, deleted: true }, () => `Deleted user ${clean(user.username)}.`);
      }),
    );

  users
    .command('passwd')
    .description("set a user's password")
    .argument('<user>', 'user ID or username')
    .option('--password <password>', 'the new password, at least 12 characters (default: typed twice on a terminal, or the first line of stdin)')
    .option('--current-password <password>', 'your current password, needed to change your own (default: asked for)')
    .action(
      withContext(io, async (ctx, ref: string, opts: { password?: string; currentPassword?: string }) => {
        const client = await ctx.client();
        const me = await client.call('me');
        // Non-admins can only reach themselves, and cannot list users to resolve a name.
        const user = ref === me.id || ref === me.username ? me : await resolveUser(client, ref);
        const self = user.id === me.id;
        const currentPassword = self ? opts.currentPassword ?? await readSecret(ctx.io, 'Current password: ') : undefined;
        const password = await newPassword(ctx, opts.password, user.username);
        const updated = await client.call('updateUser', { params: { id: user.id }, body: { password, ...(currentPassword !== undefined ? { currentPassword } : {}) } });
        ctx.emit(updated, () => `Password changed for ${clean(updated.username)}.`);
      }),
    );

  users
    .command('role')
    .description("change a user's role")
    .argument('<user>', 'user ID or username')
    .addArgument(new Argument('<role>', 'the new role').choices(ROLES))
    .action(
      withContext(io, async (ctx, ref: string, role: Role) => {
        const client = await ctx.client();
        const user = await resolveUser(client, ref);
        const updated = await client.call('updateUser', { params: { id: user.id }, body: { role } });
        ctx.emit(updated, () => `${clean(updated.username)} is now ${updated.role}.`);
      }),
    );
}
