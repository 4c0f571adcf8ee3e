import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { checker } from '@pallas/protocol';
import Type, { type Static } from 'typebox';
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

const Version = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]*$' });
const Path = Type.String({ minLength: 1, maxLength: 4096 });

export const UpdateRecord = Type.Object(
  {
    taskId: Type.String({ minLength: 1 }),
    /** The version that installed the update, and the file that runs it. */
    from: Version,
    fromPath: Path,
    /** The new version, and its bundle under `versions/`. */
    to: Version,
    toPath: Path,
    healthySec: Type.Integer({ minimum: 1 }),
    /** Wall clock (ISO 8601): `to` must have committed by then, else the supervisor rolls back. */
    deadline: Type.String({ format: 'date-time' }),
    /**
     * `trying`: the supervisor runs `to`; `committed`: `to` reported healthy and is current;
     * `rolled-back`: `to` failed (`reason`) and `from` runs again.
     */
    state: Type.Union([Type.Literal('trying'), Type.Literal('committed'), Type.Literal('rolled-back')]),
    reason: Type.Optional(Type.String()),
    /** When `state` was last set. */
    at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type UpdateRecord = Static<typeof UpdateRecord>;

export const CurrentRecord = Type.Object(
  { version: Version, path: Path, since: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);
export type CurrentRecord = Static<typeof CurrentRecord>;

const checkUpdate = checker(UpdateRecord);
const checkCurrent = checker(CurrentRecord);

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
