import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import type { LineLogger } from '../util/line-logger.js';
import { describeError } from '../errors.js';
import { Backoff, sleep, type BackoffOptions } from '../util/backoff.js';
import { rollBack } from './self-updater.js';
import { ENTRY_ENV, RESTART_FOR_UPDATE_EXIT_CODE, SUPERVISED_ENV, UpdateFiles, type UpdateRecord } from './update-files.js';

/**
 * V8 flags for the agent (docs/agent-update.md; measured with `npm run bench -- --scenario
 * agent`, docs/benchmarks.md "Agent footprint"):
 * - `--max-semi-space-size=1`: a small young generation. A download's socket buffers live
 *   outside the heap and are freed only when a scavenge collects their wrappers, so with V8's
 *   default (16 MB semi-spaces) a fast download holds 30–40 MB of spent buffers; at 1 MB it
 *   holds a few. The agent allocates little else, so the extra scavenges cost next to nothing.
 * - `--no-opt --no-sparkplug`: JavaScript runs in V8's interpreter only (no TurboFan, no
 *   baseline compiler), so no machine code is generated and kept. The agent idles at some
 *   16 MB less (about 83 → 66 MiB RSS) and peaks lower at start and while downloading; the
 *   price is CPU where JavaScript runs hot (a download on loopback: about 1.5× the CPU per
 *   GiB, far below what a device's link carries anyway).
 * Tried and left out: `--lite-mode` (the same saving, but it turns WebAssembly off, and
 * Node's fetch parses HTTP with it: enrollment failed), `--jitless` (less gain, no
 * WebAssembly either), `--optimize-for-size` and `--max-old-space-size=32` (no measurable
 * gain at idle).
 */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--no-opt', '--no-sparkplug'];

export interface SupervisorOptions {
  stateDir: string;
  /** The installed agent's launcher (`bin/pallas-agent.js`): run when `current.json` names nothing. */
  installed: string;
  /** The agent's arguments, passed to every version as they are (but `--re-enroll` only to the first start). */
  args: readonly string[];
  /** A pino logger fits; `pallas-agent supervise` gives a `lineLogger` (no pino in the supervisor). */
  logger: LineLogger;
  /** The child's environment. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** After SIGTERM, how long an agent gets to stop before SIGKILL. Default 10 s. */
  killGraceMs?: number;
  /** Delays between restarts after a crash. Default base 1 s, cap 30 s, full jitter. */
  restartBackoff?: BackoffOptions;
  /** A child that ran this long resets the restart backoff. Default 60 s. */
  stableAfterMs?: number;
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The supervisor killed it: the update deadline passed before it committed. */
  deadlineKilled: boolean;
}

/**
 * `pallas-agent supervise`: the small program that outlives agent versions
 * (docs/agent-update.md). It runs one agent at a time as a child with the same arguments: the
 * version being tried (`update.json` `trying`), else `current.json`'s, else the installed one;
 * restarts it when it exits, and rolls an update back when the new version exits before it
 * committed or has not committed by the deadline.
 *
 * Exit: 0 when stopped by a signal or when the agent stopped for good (exit 0: decommissioned),
 * 2 when the agent reports bad configuration (exit 2: restarting would not fix it).
 */
export class Supervisor {
  readonly #opts: Readonly<SupervisorOptions>;
  readonly #files: UpdateFiles;
  readonly #log: LineLogger;
  readonly #stopping = new AbortController();
  #child: ChildProcess | undefined;
  #starts = 0;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#files = new UpdateFiles(options.stateDir);
    this.#log = options.logger;
  }

  /** Runs agents until `stop()` or an agent's final exit; resolves with the supervisor's exit status. */
  async run(): Promise<number> {
    const backoff = new Backoff({ baseMs: 1000, capMs: 30_000, ...this.#opts.restartBackoff });
    while (!this.#stopping.signal.aborted) {
      const { entry, trial } = await this.#choose();
      const startedAt = monotonicMs();
      const exit = await this.#runChild(entry, trial);
      if (this.#stopping.signal.aborted) break;
      if (trial && (await this.#rollBackFailedTrial(trial, exit))) {
        backoff.reset();
        continue;
      }
      if (exit.code === RESTART_FOR_UPDATE_EXIT_CODE) {
        this.#log.info('agent asked to restart into an update');
        backoff.reset();
        continue;
      }
      if (exit.code === 0) {
        this.#log.info('agent stopped for good (exit 0); supervisor exiting');
        return 0;
      }
      if (exit.code === 2) {
        this.#log.error('agent refused its configuration (exit 2); supervisor exiting: restarting would not help');
        return 2;
      }
      if (monotonicMs() - startedAt >= (this.#opts.stableAfterMs ?? 60_000)) backoff.reset();
      const delayMs = backoff.next();
      this.#log.warn({ entry, code: exit.code, signal: exit.signal, restartInMs: delayMs }, 'agent exited; restarting it');
      await sleep(delayMs, this.#stopping.signal).catch(() => {});
    }
    return 0;
  }

  /** SIGTERM/SIGINT: stop the agent (SIGTERM, then SIGKILL after the grace period) and return. */
  stop(): void {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort();
    if (this.#child) this.#terminate(this.#child);
  }

  /** What to run now. A trial whose deadline passed while nobody watched (a reboot) is rolled back first. */
  async #choose(): Promise<{ entry: string; trial?: UpdateRecord }> {
    const record = await this.#files.readUpdate().catch((err: unknown) => {
      this.#log.error({ err: describeError(err) }, 'update.json is unreadable; ignoring it');
      return null;
    });
    if (record?.state === 'trying') {
      if (Date.now() >= Date.parse(record.deadline)) {
        await this.#rollBack(record, `${record.to} did not report healthy within ${record.healthySec} s`);
      } else if (!(await exists(record.toPath))) {
        await this.#rollBack(record, `${record.to} cannot start: ${record.toPath} is missing`);
      } else {
        this.#log.warn({ from: record.from, to: record.to, deadline: record.deadline }, 'trying an agent update');
        return { entry: record.toPath, trial: record };
      }
    }
    const current = await this.#files.readCurrent().catch((err: unknown) => {
      this.#log.error({ err: describeError(err) }, 'current.json is unreadable; running the installed agent');
      return null;
    });
    if (current && (await exists(current.path))) return { entry: current.path };
    if (current) this.#log.error({ path: current.path }, 'current.json names a missing file; running the installed agent');
    return { entry: this.#opts.installed };
  }

  #runChild(entry: string, trial: UpdateRecord | undefined): Promise<ChildExit> {
    // --re-enroll is an operator's one-off ask: repeated at every restart it would enroll
    // again each time (with a token long expired), so only the first agent gets it.
    const args = this.#starts++ === 0 ? this.#opts.args : this.#opts.args.filter((a) => a !== '--re-enroll');
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, entry, ...args], {
      stdio: 'inherit',
      env: { ...(this.#opts.env ?? process.env), [SUPERVISED_ENV]: '1', [ENTRY_ENV]: entry },
    });
    this.#child = child;
    this.#log.info({ entry, pid: child.pid }, 'agent started');
    let deadlineKilled = false;
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (trial) {
      deadlineTimer = setTimeout(() => {
        void this.#files.readUpdate().then(
          (now) => {
            if (now?.state !== 'trying' || now.taskId !== trial.taskId || child.exitCode !== null) return;
            deadlineKilled = true;
            this.#log.error({ to: trial.to, healthySec: trial.healthySec }, 'the new agent did not report healthy in time; stopping it');
            this.#terminate(child);
          },
          (err: unknown) => this.#log.error({ err: describeError(err) }, 'update.json is unreadable at the deadline'),
        );
      }, Math.max(0, Date.parse(trial.deadline) - Date.now()));
    }
    return new Promise((resolve) => {
      let spawnError: Error | undefined;
      child.on('error', (err) => (spawnError = err));
      child.on('close', (code, signal) => {
        clearTimeout(deadlineTimer);
        clearTimeout(this.#killTimer);
        this.#child = undefined;
        if (spawnError) this.#log.error({ entry, err: spawnError.message }, 'agent could not be started');
        resolve({ code: spawnError ? -1 : code, signal, deadlineKilled });
      });
    });
  }

  /** True if `trial` was still uncommitted when its process ended: then it is rolled back. */
  async #rollBackFailedTrial(trial: UpdateRecord, exit: ChildExit): Promise<boolean> {
    const record = await this.#files.readUpdate().catch(() => trial);
    if (record?.state !== 'trying' || record.taskId !== trial.taskId) return false;
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    await this.#rollBack(record, exit.deadlineKilled ? `${trial.to} did not report healthy within ${trial.healthySec} s` : `${trial.to} ${how} before it reported healthy`);
    return true;
  }

  async #rollBack(record: UpdateRecord, reason: string): Promise<void> {
    this.#log.error({ task: record.taskId, from: record.from, to: record.to, reason }, 'rolling the agent update back');
    await rollBack(this.#files, record, reason);
  }

  #terminate(child: ChildProcess): void {
    child.kill('SIGTERM');
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => child.kill('SIGKILL'), this.#opts.killGraceMs ?? 10_000);
    this.#killTimer.unref();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Milliseconds on a clock that only moves forward (without loading perf_hooks into the supervisor). */
function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
