/** `pallas audit`: who did what, when, from where (admin); `pallas audit export`: the same as a CSV or JSON file. */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { AuditEntry, AuditQuery } from '@pallas/protocol';
import { parseDuration } from '@pallas/protocol/units';
import type { Io } from '../io.js';
import { formatTimestamp } from '../output/format.js';
import { clean, formatTable } from '../output/table.js';
import { intArg, withContext } from './common.js';

const entries = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`;
/** The sign-in actions `--hide-logins` leaves out. */
export const LOGIN_ACTIONS = 'login.,logout';

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

/** `device:edge-01`, `vm:web-1 on edge-01`; the id only when no name was recorded. */
function targetText(e: AuditEntry): string {
  if (!e.target) return '';
  const on = typeof e.detail?.deviceName === 'string' ? ` on ${e.detail.deviceName}` : '';
  return `${e.target.kind}:${e.target.name ?? e.target.id}${on}`;
}

/** The request's outcome, then the task it started as it stands now: `ok; task failed`. */
function outcomeText(e: AuditEntry): string {
  if (!e.task) return e.outcome;
  const late = e.task.lateOutcome ? ` (finished later: ${e.task.lateOutcome})` : '';
  return `${e.outcome}; task ${e.task.state.replace('_', ' ')}${late}`;
}

const REASON_MAX = 60;
/** Why a request was refused, or why its task failed: `code: message`, cut for a table. */
function reasonText(e: AuditEntry): string {
  const r = e.reason ?? e.task?.error;
  if (!r) return '';
  const text = `${r.code}: ${r.message}`.replace(/\s+/g, ' ');
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
}

interface FilterOptions { actor?: string; action?: string; exclude?: string; hideLogins?: boolean; target?: string; outcome?: AuditQuery['outcome']; since?: string; until?: string }

function filtersOf(opts: FilterOptions): Omit<AuditQuery, 'limit' | 'offset'> {
  const q: Omit<AuditQuery, 'limit' | 'offset'> = {};
  for (const k of ['actor', 'action', 'target', 'outcome', 'since', 'until'] as const) {
    if (opts[k] !== undefined) (q as Record<string, unknown>)[k] = opts[k];
  }
  const exclude = [opts.exclude, opts.hideLogins ? LOGIN_ACTIONS : undefined].filter(Boolean).join(',');
  if (exclude) q.exclude = exclude;
  return q;
}

/** The filters both commands take. */
function withFilters(cmd: Command): Command {
  return cmd
    .option('--actor <name>', 'a user name, device ID or API token ID')
    .option('--action <action>', 'an action (user.create) or a prefix (user. or user*)')
    .option('--exclude <actions>', 'leave out these actions or prefixes, comma-separated (login.,logout)')
    .option('--hide-logins', 'leave out sign-ins and sign-outs (login.*, logout)')
    .option('--target <id-or-name>', "the target's ID or name (a device's, a user's)")
    .addOption(new Option('--outcome <outcome>', 'only ok, denied or failed requests').choices(['ok', 'denied', 'failed']))
    .option('--since <when>', 'from this long ago (2h, 7d) or this timestamp', sinceArg)
    .option('--until <when>', 'up to this long ago or this timestamp', sinceArg);
}

export function registerAudit(program: Command, io: Io): void {
  const audit = withFilters(program.command('audit').description('show the audit log, newest first (admin); `audit export` writes it as CSV or JSON'))
    .option('--limit <n>', 'at most this many entries (default 50)', intArg(1, 1000))
    .action(
      withContext(io, async (ctx, opts: FilterOptions & { limit?: number }) => {
        const client = await ctx.client();
        const q: AuditQuery = { ...filtersOf(opts), ...(opts.limit !== undefined ? { limit: opts.limit } : {}) };
        const page = await client.call('listAudit', { query: q });
        ctx.emit(page, () =>
          [
            formatTable(
              ['TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'REASON', 'FROM'],
              page.items.map((e) => [formatTimestamp(e.at), clean(actorText(e)), e.action, clean(targetText(e)), outcomeText(e), clean(reasonText(e)), e.ip ?? '']),
            ),
            page.total > page.items.length ? `${page.items.length} of ${entries(page.total)} (use --limit, --since)` : entries(page.total),
          ].join('\n'),
        );
      }),
    );

  withFilters(audit.command('export').description('write every matching entry as CSV or JSON, newest first (admin)'))
    .addOption(new Option('--format <format>', 'csv (one line per entry, with a header) or json (an array)').choices(['csv', 'json']).default('csv'))
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(
      withContext(io, async (ctx, own: FilterOptions & { format: 'csv' | 'json'; output?: string }) => {
        // The filters are `audit`'s options too, and commander gives them to it when they come after `export`.
        const opts = { ...(audit.opts() as FilterOptions), ...own };
        const client = await ctx.client();
        const res = await client.exportAudit({ ...filtersOf(opts), format: opts.format });
        if (!res.body) throw new Error('the manager sent no body');
        if (opts.output !== undefined) {
          await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(opts.output, { mode: 0o600 }));
          ctx.note(`Wrote the audit log to ${opts.output}.`);
          return;
        }
        // stdout as it arrives: the export is never held whole.
        const decoder = new TextDecoder();
        for await (const chunk of Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)) ctx.io.stdout.write(decoder.decode(chunk as Uint8Array, { stream: true }));
        const rest = decoder.decode();
        if (rest) ctx.io.stdout.write(rest);
      }),
    );
}
