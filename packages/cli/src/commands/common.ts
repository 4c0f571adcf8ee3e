/** Helpers shared by the command groups: action wiring and option parsers. */
import { type Command, InvalidArgumentError } from 'commander';
import type { CallInput, PallasClient } from '@pallas/client';
import type { PageOf } from '@pallas/protocol';
import type { PagedRouteName, PageItem } from '@pallas/protocol/routes';
import { Context, type GlobalOptions } from '../context.js';
import type { Io } from '../io.js';

/**
 * Wrap an action so it receives a Context built from the global options. Commander calls
 * actions as (...positionals, options, command); the command is last.
 */
export function withContext<A extends unknown[]>(io: Io, fn: (ctx: Context, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    await fn(new Context(io, cmd.optsWithGlobals<GlobalOptions>()), ...(args.slice(0, -1) as A));
  };
}

/** A parser for integer options within [min, max]; commander turns the throw into exit 2. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Quote for a POSIX shell only when needed, so the common case stays copy-paste friendly. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Pluralize a count: "1 device", "3 devices". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Every item of a paged listing as one page (what `--json` prints for a whole listing). */
export async function fetchAll<R extends PagedRouteName>(client: PallasClient, name: R, input?: CallInput<R>, pageSize?: number): Promise<PageOf<PageItem<R>>> {
  const items = await client.all(name, input, pageSize);
  return { items, total: items.length, limit: Math.max(1, items.length), offset: 0 };
}
