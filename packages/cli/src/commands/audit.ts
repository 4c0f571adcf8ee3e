/** `pallas audit`: who did what, when, from where (admin). */
import { type Command, InvalidArgumentError } from 'commander';
import type { AuditEntry, AuditQuery } from '@pallas/protocol';
import { parseDuration } from '@pallas/protocol/units';
import type { Io } from '../io.js';
import { formatTimestamp } from '../output/format.js';
import { formatTable } from '../output/table.js';
import { intArg, withContext } from './common.js';

const entries = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`;

/** `--since 2h` (a duration back from now) or an ISO timestamp. */
function sinceArg(value: string): string {
  const sec = parseDuration(value);
  if (sec !== undefined) return new Date(Date.now() - sec * 1000).toISOString();
  if (!Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  throw new InvalidArgumentError('expected a duration such as 2h or 7d, or a timestamp such as 2026-01-31T12:00:00Z');
}

function actorText(e: AuditEntry): string {
  const who = e.actor.name ?? e.actor.id ?? '';
  return e.actor.kind === 'user' ? who : `${e.actor.kind}${who ? `:${who}` : ''}`;
}

function targetText(e: AuditEntry): string {
  return e.target ? `${e.target.kind}:${e.target.name ?? e.target.id}` : '';
}

export function registerAudit(program: Command, io: Io): void {
  program
    .command('audit')
    .description('show the audit log, newest first (admin)')
    .option('--actor <name>', 'a user name, device ID or API token ID')
    .option('--action <action>', 'an action (user.create) or a prefix (user. or user*)')
    .option('--target <id>', "the target's ID")
    .option('--since <when>', 'from this long ago (2h, 7d) or this timestamp', sinceArg)
    .option('--until <when>', 'up to this long ago or this timestamp', sinceArg)
    .option('--limit <n>', 'at most this many entries (default 50)', intArg(1, 1000))
    .action(
      withContext(io, async (ctx, opts: { actor?: string; action?: string; target?: string; since?: string; until?: string; limit?: number }) => {
        const client = await ctx.client();
        const q: AuditQuery = {};
        for (const k of ['actor', 'action', 'target', 'since', 'until', 'limit'] as const) {
          if (opts[k] !== undefined) (q as Record<string, unknown>)[k] = opts[k];
        }
        const page = await client.call('listAudit', { query: q });
        ctx.emit(page, () =>
          [
            formatTable(
              ['TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'FROM'],
              page.items.map((e) => [formatTimestamp(e.at), actorText(e), e.action, targetText(e), e.outcome, e.ip ?? '']),
            ),
            page.total > page.items.length ? `${page.items.length} of ${entries(page.total)} (use --limit, --since)` : entries(page.total),
          ].join('\n'),
        );
      }),
    );
}
