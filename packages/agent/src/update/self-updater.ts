import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../util/line-logger.js';
import { describeError } from '../errors.js';
import { probeAgentBundle } from './probe-bundle.js';
import { UpdateError } from './update-error.js';
import { UpdateFiles, type UpdateRecord } from './update-files.js';

export interface SelfUpdaterOptions {
  stateDir: string;
  /** This agent's version (`AGENT_VERSION`). */
  version: string;
  /** The file the supervisor started for this version: what a rollback runs again. */
  entry: string;
  logger: Logger;
  /**
   * The new version is installed and `update.json` says `trying`: stop and exit with
   * `RESTART_FOR_UPDATE_EXIT_CODE` so that the supervisor starts it.
   */
  requestRestart: () => void;
  /** Timeout of the `--version` check. Default 15 s. */
  probeTimeoutMs?: number;
}

/** What the task runner hands over for an `agent.update` task. */
export interface AgentUpdateRequest {
  taskId: string;
  healthySec: number;
  /** The task was journaled as started before this process: a restart (the update's own, or a crash) came between. */
  recovering: boolean;
  /** The verified bundle (through the `ArtifactFetcher`); called only when it is still to be installed. */
  fetch: () => Promise<string>;
}

/** The port the task runner sees; `SelfUpdater` is the adapter. */
export interface AgentUpdater {
  /**
   * Runs (or resumes) the update of task `taskId`. Resolves once the new version is committed
   * (in the new process); rejects with an `UpdateError` when it was refused or rolled back.
   * When it has just installed the new version it never settles: the agent is restarting.
   */
  update(request: AgentUpdateRequest): Promise<void>;
  /** The agent is online and a status report reached the broker ("healthy"). */
  healthy(): void;
}

/**
 * The agent's side of self-update (docs/agent-update.md): install a new version and ask the
 * supervisor to restart into it; in the new version, commit once healthy; in either, finish
 * the task from what `update.json` says, whichever process died at whichever step.
 */
export class SelfUpdater implements AgentUpdater {
  readonly #opts: Readonly<SelfUpdaterOptions>;
  readonly #files: UpdateFiles;
  readonly #log: Logger;
  #committed: { promise: Promise<void>; resolve: () => void } = deferred();
  #commitRunning: Promise<void> | undefined;
  /** Nothing (more) to commit for this process: `healthy()` stops reading update.json. */
  #settled = false;

  constructor(options: SelfUpdaterOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#files = new UpdateFiles(options.stateDir);
    this.#log = options.logger;
  }

  get files(): UpdateFiles {
    return this.#files;
  }

  async update(request: AgentUpdateRequest): Promise<void> {
    const { version } = this.#opts;
    const record = await this.#files.readUpdate();
    if (record?.taskId === request.taskId) {
      switch (record.state) {
        case 'committed':
          if (record.to === version) return;
          // Committed, yet the old version runs: current.json was changed by hand since.
          throw new UpdateError('rolled_back', `${record.to} was committed, but ${version} is running again`);
        case 'rolled-back':
          throw new UpdateError('rolled_back', record.reason ?? `${record.to} was rolled back`);
        case 'trying':
          if (record.to === version) {
            this.#log.info({ task: request.taskId, from: record.from }, 'updated agent started: the task succeeds once it reports healthy');
            return this.#committed.promise;
          }
          // The old version runs while the new one is still "trying": the supervisor did not
          // run it (an agent started by hand, a supervisor of an older kind). Record that, so
          // no supervisor starts the new version later behind the operator's back.
          return this.#rollBack(record, `${version} is running again before ${record.to} reported healthy`);
      }
    }
    if (record?.state === 'trying') {
      throw new UpdateError('invalid_state', `update to ${record.to} (task ${record.taskId}) is still being tried`);
    }
    return this.#install(request);
  }

  /**
   * The link is up and a status report reached the broker: if this process is the version
   * being tried, make it current. Idempotent; called on every report, cheap when there is
   * nothing to do.
   */
  healthy(): void {
    if (this.#settled) return;
    this.#commitRunning ??= this.#commit()
      .catch((err: unknown) => this.#log.error({ err: describeError(err) }, 'could not commit the agent update; the supervisor will roll it back at the deadline'))
      .finally(() => (this.#commitRunning = undefined));
  }

  async #commit(): Promise<void> {
    const record = await this.#files.readUpdate();
    // Only a trial of this very version, written before this process started, can need a
    // commit: whatever else the file says now stays so for this process's life.
    if (!record || record.to !== this.#opts.version || record.state !== 'trying') {
      this.#settled = true;
      if (record?.state === 'committed' && record.to === this.#opts.version) this.#committed.resolve();
      return;
    }
    if (Date.now() >= Date.parse(record.deadline)) {
      this.#log.warn({ deadline: record.deadline }, 'healthy only after the update deadline: leaving the rollback to the supervisor');
      return;
    }
    // current.json first: a crash between the two leaves `trying` with the new version
    // current, which the next start commits again (or the supervisor rolls back, rewriting current.json).
    const at = new Date().toISOString();
    await this.#files.writeCurrent({ version: record.to, path: record.toPath, since: at });
    await this.#files.writeUpdate({ ...record, state: 'committed', at });
    this.#log.info({ from: record.from, to: record.to, task: record.taskId }, 'agent update committed');
    this.#settled = true;
    this.#committed.resolve();
  }

  async #install(request: AgentUpdateRequest): Promise<never> {
    const { version, entry } = this.#opts;
    const file = await request.fetch();
    // Node decides ESM by the extension, and the downloaded file has none: the bundle is
    // copied beside its final place as .mjs first, checked there, then renamed into
    // versions/<version>/ (a crash mid-copy never leaves a torn bundle under the final name).
    const incoming = join(this.#files.dir, 'versions', `.incoming-${process.pid}.mjs`);
    await mkdir(dirname(incoming), { recursive: true, mode: 0o700 });
    let toPath: string;
    let to: string;
    try {
      await copyFile(file, incoming);
      to = await probeAgentBundle(incoming, this.#opts.probeTimeoutMs);
      if (to === version) throw new UpdateError('invalid_artifact', `the artifact is pallas-agent ${to}, the version already running`);
      toPath = this.#files.bundlePath(to);
      await mkdir(dirname(toPath), { recursive: true, mode: 0o700 });
      await rename(incoming, toPath);
    } finally {
      await rm(incoming, { force: true });
    }
    const now = Date.now();
    await this.#files.writeUpdate({
      taskId: request.taskId,
      from: version,
      fromPath: entry,
      to,
      toPath,
      healthySec: request.healthySec,
      deadline: new Date(now + request.healthySec * 1000).toISOString(),
      state: 'trying',
      at: new Date(now).toISOString(),
    });
    this.#log.warn({ task: request.taskId, from: version, to, healthySec: request.healthySec }, 'agent update installed; restarting into it');
    this.#opts.requestRestart();
    return new Promise<never>(() => {}); // this process is going away; the new one finishes the task
  }

  async #rollBack(record: UpdateRecord, reason: string): Promise<never> {
    await rollBack(this.#files, record, reason);
    this.#log.warn({ task: record.taskId, reason }, 'agent update rolled back');
    throw new UpdateError('rolled_back', reason);
  }
}

/**
 * Makes `record.from` current again and marks the update rolled back, in that order (the same
 * rule as commit: a crash in between is redone by whoever reads `trying` next). Rolling back
 * to the installed agent (a `from` outside `versions/`) removes `current.json`, so that an
 * upgrade of the installed package takes effect as before.
 */
export async function rollBack(files: UpdateFiles, record: UpdateRecord, reason: string): Promise<void> {
  const at = new Date().toISOString();
  await files.writeCurrent(files.isBundle(record.fromPath) ? { version: record.from, path: record.fromPath, since: at } : null);
  await files.writeUpdate({ ...record, state: 'rolled-back', reason, at });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
