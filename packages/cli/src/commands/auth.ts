/** `pallas login`, `logout`, `whoami`: the session saved in the config file. */
import type { Command } from 'commander';
import { resolveToken, saveConfig } from '../config.js';
import { PallasApiError, PallasNetworkError } from '@pallas/client';
import { CliError, UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { formatTimestamp } from '../output/format.js';
import { ask, isInteractive, readSecret } from '../prompt.js';
import { withContext } from './common.js';

export function registerAuth(program: Command, io: Io): void {
  program
    .command('login')
    .description('log in to a manager and save the session token')
    .option('-u, --username <name>', 'user name (default: $PALLAS_USERNAME, a prompt, or the last one used)')
    .option('-p, --password <password>', 'password (default: $PALLAS_PASSWORD, a hidden prompt, or the first line of stdin)')
    .action(
      withContext(io, async (ctx, opts: { username?: string; password?: string }) => {
        const saved = await ctx.saved();
        const { server } = await ctx.server();
        let username = opts.username ?? ctx.io.env.PALLAS_USERNAME;
        if (!username && isInteractive(ctx.io)) {
          const hint = saved.username ? ` [${saved.username}]` : '';
          username = ((await ask(ctx.io, `Username${hint}: `)) ?? '').trim() || saved.username;
        }
        username ||= saved.username;
        if (!username) throw new UsageError('missing --username');
        const password = opts.password ?? ctx.io.env.PALLAS_PASSWORD ?? (await readSecret(ctx.io, 'Password: '));

        const client = await ctx.anonymousClient();
        let res;
        try {
          res = await client.login(username, password);
        } catch (err) {
          // Here a 401 means wrong credentials, not an expired session: show the server's words.
          if (err instanceof PallasApiError && err.status === 401) throw new CliError(`login failed: ${err.message}`);
          throw err;
        }
        await saveConfig(ctx.configPath, { server, token: res.token, username: res.user.username, expiresAt: res.expiresAt });
        ctx.emit({ server, user: res.user, expiresAt: res.expiresAt }, () =>
          `Logged in to ${server} as ${res.user.username} (${res.user.role}); session expires ${formatTimestamp(res.expiresAt)}.`,
        );
      }),
    );

  program
    .command('logout')
    .description('end the session on the manager and forget the saved token')
    .action(
      withContext(io, async (ctx) => {
        const saved = await ctx.saved();
        const { server } = await ctx.server();
        let client;
        try {
          client = await ctx.client();
        } catch {
          ctx.emit({ server, loggedOut: false }, () => `Not logged in to ${server}.`);
          return;
        }
        const token = client.token;
        let serverError: unknown;
        try {
          await client.logout();
        } catch (err) {
          // 401: the session was already gone, which is what logout wants anyway.
          if (!(err instanceof PallasApiError && err.status === 401)) serverError = err;
        }
        // Forget the token locally even when the server was unreachable: the operator asked to
        // log out, and the saved token is the part we control.
        if (saved.token && resolveToken(server, {}, saved) === token) {
          const { token: _drop, expiresAt: _exp, ...rest } = saved;
          await saveConfig(ctx.configPath, rest);
        }
        if (serverError instanceof PallasNetworkError) {
          throw new CliError(`${serverError.message}: the saved token was removed, but the session stays valid on the server until it expires`);
        }
        if (serverError) throw serverError;
        ctx.emit({ server, loggedOut: true }, () => `Logged out of ${server}.`);
      }),
    );

  program
    .command('whoami')
    .description('show the logged-in user')
    .action(
      withContext(io, async (ctx) => {
        const client = await ctx.client();
        const user = await client.call('me');
        // An API token (`pat_…`, from PALLAS_TOKEN) acts with the role it was created with, which
        // may be below the user's: say which credential this is, so the role is not a surprise.
        const token = resolveToken(client.server, ctx.io.env, await ctx.saved());
        const auth = token?.startsWith('pat_') ? 'api-token' : 'session';
        ctx.emit({ server: client.server, user, auth }, () =>
          `${user.username} (${user.role}) on ${client.server}${auth === 'api-token' ? ', with an API token (PALLAS_TOKEN), not a login session' : ''}`);
      }),
    );
}
