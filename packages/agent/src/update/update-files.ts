import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * The files self-update keeps under `<state-dir>/agent/` (docs/agent-update.md):
 * - `versions/<version>/pallas-agent.mjs`: installed agent bundles.
 * - `update.json`: the one update in progress or last done (`UpdateRecord`).
 * - `current.json`: the agent to run when no update is being tried (`CurrentRecord`);
 *   absent = the installed agent (the one the supervisor was started from).
 * Both JSON files are replaced atomically, so any process may die at any step and the next
 * one reads either the old or the new record.
 */

/** Exit status with which an agent asks the supervisor to restart it into the version `update.json` names. */
export const RESTART_FOR_UPDATE_EXIT_CODE = 10;

/** Set by the supervisor in its child's environment: `1` = supervised, so an `agent.update` has someone to restart into the new version. */
export const SUPERVISED_ENV = 'PALLAS_AGENT_SUPERVISED';
/** Set by the supervisor: the file it started (the installed launcher or a bundle), which is what "roll back to this version" runs. */
export const ENTRY_ENV = 'PALLAS_AGENT_ENTRY';

// Checked by hand, not with TypeBox: the supervisor reads these files, and TypeBox alone is
// some 20 MB of the supervisor's memory (hundreds of modules; docs/benchmarks.md, "Agent
// footprint"). The checks are those the schemas had: every field, nothing more.

export interface UpdateRecord {
  taskId: string;
  /** The version that installed the update, and the file that runs it. */
  from: string;
  fromPath: string;
  /** The new version, and its bundle under `versions/`. */
  to: string;
  toPath: string;
  healthySec: number;
  /** Wall clock (ISO 8601): `to` must have committed by then, else the supervisor rolls back. */
  deadline: string;
  /**
   * `trying`: the supervisor runs `to`; `committed`: `to` reported healthy and is current;
   * `rolled-back`: `to` failed (`reason`) and `from` runs again.
   */
  state: 'trying' | 'committed' | 'rolled-back';
  reason?: string;
  /** When `state` was last set. */
  at: string;
}

export interface CurrentRecord {
  version: string;
  path: string;
  since: string;
}

type FieldCheck = (v: unknown) => string | undefined;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
/** RFC 3339 date-time, as TypeBox's `date-time` format. */
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i;
const text = (min: number, max = Infinity, pattern?: RegExp): FieldCheck => (v) =>
  typeof v !== 'string' ? 'expected a string'
    : v.length < min ? `expected at least ${min} character(s)`
      : v.length > max ? `expected at most ${max} characters`
        : pattern && !pattern.test(v) ? `does not match ${pattern.source}` : undefined;
const version = text(1, 128, VERSION);
const path = text(1, 4096);
const dateTime: FieldCheck = (v) => typeof v !== 'string' || !DATE_TIME.test(v) || Number.isNaN(Date.parse(v)) ? 'expected a date-time' : undefined;
const optional = (check: FieldCheck): FieldCheck & { optional: true } => Object.assign((v: unknown) => check(v), { optional: true as const });

const UPDATE_FIELDS: Record<keyof UpdateRecord, FieldCheck> = {
  taskId: text(1),
  from: version,
  fromPath: path,
  to: version,
  toPath: path,
  healthySec: (v) => Number.isInteger(v) && (v as number) >= 1 ? undefined : 'expected an integer of at least 1',
  deadline: dateTime,
  state: (v) => v === 'trying' || v === 'committed' || v === 'rolled-back' ? undefined : 'expected trying, committed or rolled-back',
  reason: optional(text(0)),
  at: dateTime,
};
const CURRENT_FIELDS: Record<keyof CurrentRecord, FieldCheck> = { version, path, since: dateTime };

/** The first problem of `value` against `fields` as "field: message", or undefined when it fits. */
function problemOf(value: unknown, fields: Record<string, FieldCheck>): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return '(root): expected an object';
  const record = value as Record<string, unknown>;
  const extra = Object.keys(record).filter((k) => !Object.hasOwn(fields, k));
  if (extra.length) return `(root): unexpected properties (${extra.join(', ')})`;
  for (const [name, check] of Object.entries(fields)) {
    if (!Object.hasOwn(record, name)) {
      if ((check as { optional?: true }).optional) continue;
      return `${name}: is required`;
    }
    const problem = check(record[name]);
    if (problem) return `${name}: ${problem}`;
  }
  return undefined;
}

const checkUpdate = { check: (v: unknown): v is UpdateRecord => !problemOf(v, UPDATE_FIELDS), explain: (v: unknown) => problemOf(v, UPDATE_FIELDS) ?? 'invalid' };
const checkCurrent = { check: (v: unknown): v is CurrentRecord => !problemOf(v, CURRENT_FIELDS), explain: (v: unknown) => problemOf(v, CURRENT_FIELDS) ?? 'invalid' };

export class UpdateFiles {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'agent');
  }

  get updatePath(): string {
    return join(this.dir, 'update.json');
  }

  get currentPath(): string {
    return join(this.dir, 'current.json');
  }

  /** Where a bundle of `version` is kept once installed. */
  bundlePath(version: string): string {
    return join(this.dir, 'versions', version, 'pallas-agent.mjs');
  }

  /** True for a bundle under `versions/` (as opposed to the installed launcher). */
  isBundle(path: string): boolean {
    return path.startsWith(join(this.dir, 'versions') + sep);
  }

  /** null when there is none. A file that does not parse or fit is an error (never "no update"). */
  async readUpdate(): Promise<UpdateRecord | null> {
    return readRecord(this.updatePath, checkUpdate);
  }

  async writeUpdate(record: UpdateRecord): Promise<void> {
    await this.#ensureDir();
    await writeFileAtomic(this.updatePath, `${JSON.stringify(record, null, 1)}\n`, 0o600);
  }

  async readCurrent(): Promise<CurrentRecord | null> {
    return readRecord(this.currentPath, checkCurrent);
  }

  /** `null` removes `current.json`: the installed agent runs. */
  async writeCurrent(record: CurrentRecord | null): Promise<void> {
    await this.#ensureDir();
    if (record) await writeFileAtomic(this.currentPath, `${JSON.stringify(record, null, 1)}\n`, 0o600);
    else await rm(this.currentPath, { force: true });
  }

  async #ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

async function readRecord<T>(path: string, check: { check(v: unknown): v is T; explain(v: unknown): string }): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!check.check(value)) throw new Error(`${path} is not a valid record: ${check.explain(value)}`);
  return value;
}
