import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { ArtifactGrant, ArtifactKind, TaskAck, TaskCommand, TaskOperation, TaskOutcome, TaskProgress, TaskResult, Vm } from '@pallas/protocol';
import type { Logger } from '../util/line-logger.js';
import type { Driver, OperationContext } from '../drivers/driver.js';
import { isDriverError } from '../drivers/driver-error.js';
import { ArtifactError } from '../downloads/artifact-error.js';
import type { ArtifactFetcher } from '../downloads/artifact-fetcher.js';
import { describeError } from '../errors.js';
import type { TaskJournal } from './journal.js';
import { OvaError } from '../ova/ova-error.js';
import { patchUnsupportedReason } from '../drivers/patch-support.js';
import type { AgentUpdater } from '../update/self-updater.js';
import { UpdateError } from '../update/update-error.js';
import { testHold } from '../util/test-hold.js';

export type TaskChannel = 'task/progress' | 'task/result';

export interface TaskRunnerOptions {
  driver: Driver;
  /** Opened by the caller, who also closes it after `stop()`. */
  journal: TaskJournal;
  /**
   * Sends a message upstream (QoS 1), e.g. `Link.publish`. A rejection is logged and nothing
   * more: results are re-sent until acknowledged, and a lost progress message does no harm.
   */
  publish: (channel: TaskChannel, message: TaskProgress | TaskResult) => Promise<void>;
  logger: Logger;
  /** Gets the artifacts tasks use (the downloader). Without it such tasks fail as `unsupported`. */
  fetcher?: ArtifactFetcher;
  /** Called when a task has ended, to report the inventory at once (`StatusReporter.reportNow`). */
  onTaskEnded?: () => void;
  /** While online, re-send unacknowledged results this often. Default 30 s. */
  resendIntervalMs?: number;
  /** At most one progress message per task this often. Default 1 s (see #progress). */
  progressIntervalMs?: number;
  /** Runs `agent.update` (update/self-updater.ts); present only under the supervisor. Default: those tasks fail `unsupported`. */
  agentUpdater?: AgentUpdater;
}

export interface TaskRunnerEvents {
  /** The task is journaled (its first progress, pct 0, went out as it began). */
  'task-started': [taskId: string];
  /** The task ended; its result is journaled and being published. */
  'task-finished': [result: TaskResult];
}

/**
 * At most one progress message per task this often, by default. Each one crosses the device's
 * link, the broker, a row update and every open live stream; on a shared or metered link four
 * a second per task (the earlier 250 ms) were mostly cost, and a progress bar that moves once
 * a second still reads as moving. With several managers a progress message costs a statement
 * on PostgreSQL and a relay to the others: docs/benchmarks.md (cluster, 2026-12-07 09:20–11:21).
 */
const PROGRESS_INTERVAL_MS = 1000;

/** A task waiting on the agent, or the running one. */
interface Pending {
  taskId: string;
  operation: TaskOperation;
  /** The deadline on the monotonic clock (`performance.now()`): wall-clock jumps do not move it. */
  deadline: number;
  /** The same deadline on the wall clock, for the journal: only that survives a restart. */
  deadlineAt: number;
  /** Resumed after a restart: `start` is journaled already, and the operation may have taken effect. */
  recovering: boolean;
  /** The grants of the artifacts the operation names; a duplicate `run` replaces them (fresh URLs). */
  artifacts: ArtifactGrant[];
}

/** A failure the agent itself names (not the driver's). */
class TaskFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The abort reason the runner gives the driver, which rejects with it as is: it tells a cancel from a deadline. */
class TaskAborted extends Error {
  constructor(readonly outcome: 'cancelled' | 'timed_out') {
    super(outcome === 'cancelled' ? 'cancelled by the manager' : "the task's deadline passed");
  }
}

/**
 * Runs the manager's tasks on the driver, one at a time in arrival order (create, then power
 * on), with exactly-once effect through the journal; the rules are docs/tasks.md. The owner
 * feeds it commands (`handle`), acks (`ack`) and the link's state (`online`/`offline`).
 */
export class TaskRunner extends EventEmitter<TaskRunnerEvents> {
  readonly #opts: Readonly<TaskRunnerOptions>;
  readonly #log: Logger;
  readonly #journal: TaskJournal;
  #queue: Pending[] = [];
  #current: (Pending & { abort: AbortController }) | undefined;
  #pumping = false;
  #stopped = false;
  #resendTimer: NodeJS.Timeout | undefined;
  /** When each unacknowledged result was last published (monotonic ms). */
  readonly #sentAt = new Map<string, number>();

  constructor(options: TaskRunnerOptions) {
    super();
    this.#opts = Object.freeze({ ...options });
    this.#log = options.logger;
    this.#journal = options.journal;
  }

  /**
   * Resumes the tasks a crash interrupted (journaled `start`, no `result`), ahead of anything
   * the manager sends from now on, since they came first.
   */
  start(): void {
    for (const e of this.#journal.interrupted()) {
      // The one place a wall clock decides: the deadline was stored as epoch ms before the
      // restart. A clock set back or forward meanwhile moves it by as much.
      const left = e.deadlineAt - Date.now();
      this.#queue.push({ taskId: e.taskId, operation: e.operation, deadline: performance.now() + left, deadlineAt: e.deadlineAt, recovering: true, artifacts: e.artifacts ?? [] });
      this.#log.warn({ task: e.taskId, kind: e.operation.kind }, 'resuming a task interrupted by a restart');
    }
    void this.#pump();
  }

  handle(command: TaskCommand): void {
    if (this.#stopped) return;
    if (command.type === 'run') this.#onRun(command);
    else this.#onCancel(command.taskId);
  }

  ack(ack: TaskAck): void {
    if (this.#stopped) return; // the journal is closing; the result is re-sent and acked again next time
    for (const taskId of ack.taskIds) {
      this.#sentAt.delete(taskId);
      this.#journal.recordAcked(taskId).then(
        (known) => known || this.#log.debug({ task: taskId }, 'ack for a task with no unacknowledged result'),
        (err: unknown) => this.#log.warn({ task: taskId, err: describeError(err) }, 'could not journal an ack'),
      );
    }
  }

  /** The link is up (and subscribed): re-send every unacknowledged result, then every `resendIntervalMs`. */
  online(): void {
    this.offline();
    if (this.#stopped) return;
    for (const e of this.#journal.unacked()) this.#sendResult(e.result!);
    const every = this.#opts.resendIntervalMs ?? 30_000;
    this.#resendTimer = setInterval(() => {
      // Skip results sent in the last half period (a task that just ended): its ack may be on its way.
      const recent = performance.now() - every / 2;
      for (const e of this.#journal.unacked()) if ((this.#sentAt.get(e.taskId) ?? 0) <= recent) this.#sendResult(e.result!);
    }, every);
  }

  offline(): void {
    clearInterval(this.#resendTimer);
    this.#resendTimer = undefined;
  }

  /**
   * Takes no more work and journals nothing more. The running operation is abandoned, not
   * aborted: closing the driver ends it, and the next start resumes it from the journal.
   */
  stop(): void {
    this.#stopped = true;
    this.#queue = [];
    this.offline();
  }

  #onRun(command: Extract<TaskCommand, { type: 'run' }>): void {
    const { taskId } = command;
    const pending = this.#current?.taskId === taskId ? this.#current : this.#queue.find((p) => p.taskId === taskId);
    if (pending) {
      // Sent again (a reconnect): its grants are fresh, the ones held may have expired.
      if (command.artifacts?.length) pending.artifacts = command.artifacts;
      this.#log.debug({ task: taskId }, 'duplicate run of a queued or running task ignored');
      return;
    }
    const known = this.#journal.get(taskId);
    if (known?.result) {
      this.#log.debug({ task: taskId }, 'duplicate run of a finished task: re-sending its result');
      this.#sendResult(known.result);
      return;
    }
    if (known) return; // journaled and unfinished: only while stopping
    const now = performance.now();
    this.#queue.push({
      taskId, operation: command.operation, deadline: now + command.timeoutMs, deadlineAt: Date.now() + command.timeoutMs, recovering: false,
      artifacts: command.artifacts ?? [],
    });
    void this.#pump();
  }

  #onCancel(taskId: string): void {
    if (this.#current?.taskId === taskId) {
      this.#log.info({ task: taskId }, 'cancelling the running task');
      this.#current.abort.abort(new TaskAborted('cancelled'));
      return;
    }
    const i = this.#queue.findIndex((p) => p.taskId === taskId);
    if (i >= 0) {
      const [pending] = this.#queue.splice(i, 1);
      void this.#finish(pending!, this.#result(taskId, 'cancelled'));
      return;
    }
    const result = this.#journal.get(taskId)?.result;
    if (result) this.#sendResult(result); // it ended first: the manager gets what it reached
    else this.#log.info({ task: taskId }, 'cancel for a task this agent does not know; ignored');
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (let next = this.#queue.shift(); next && !this.#stopped; next = this.#queue.shift()) await this.#run(next);
    } finally {
      this.#pumping = false;
    }
  }

  /** Runs one task to its result. Never throws. */
  async #run(task: Pending): Promise<void> {
    if (task.deadline <= performance.now()) return this.#finish(task, this.#result(task.taskId, 'timed_out'));
    // One controller for both ways to stop (not AbortSignal.any + AbortSignal.timeout: a
    // 30-day deadline overflows setTimeout, which then fires at once).
    const abort = new AbortController();
    // The same object as `task`: a resend's fresh grants (#onRun) reach the running operation.
    this.#current = Object.assign(task, { abort });
    const clearDeadline = timerAt(task.deadline, () => abort.abort(new TaskAborted('timed_out')));
    // pct 0 goes out before the journal's fsync, not after: nothing has been done yet, and
    // should the agent die before the record is on disk, the manager re-sends the task (it is
    // `running` there) after the reconnect and it runs then, once. Sent in the turn of the
    // event loop that brought the command, it shares a TCP write with the command's PUBACK.
    const progress = this.#progress(task.taskId);
    try {
      if (!task.recovering) {
        try {
          await this.#journal.recordStart(task.taskId, task.operation, task.deadlineAt, task.artifacts);
        } catch (err) {
          progress.stop();
          this.#log.error({ task: task.taskId, err: describeError(err) }, 'cannot journal the task start; not running it');
          return await this.#finish(task, this.#result(task.taskId, 'failed', { error: { code: 'internal', message: `cannot write the task journal: ${describeError(err)}` } }));
        }
      }
      if (this.#stopped) return progress.stop();
      this.#log.info({ task: task.taskId, kind: task.operation.kind, recovering: task.recovering }, 'task started');
      this.emit('task-started', task.taskId);
      const { signal } = abort;
      let result: TaskResult;
      try {
        const vm = await this.#execute(task, { signal, progress: progress.update });
        // Crash tests stop here: the hypervisor acted, the result is not journaled (docs/testing.md).
        const held = testHold('agent.task-acted', { taskId: task.taskId, kind: task.operation.kind, recovering: task.recovering });
        if (held) await held;
        result = this.#result(task.taskId, 'succeeded', vm ? { vm } : {});
      } catch (err) {
        result = this.#failure(task, err, signal);
      } finally {
        progress.stop();
        await this.#releaseArtifacts(task);
      }
      if (this.#stopped) {
        this.#log.info({ task: task.taskId }, 'agent stopping: task left unfinished in the journal; it resumes at the next start');
        return;
      }
      await this.#finish(task, result);
    } finally {
      clearDeadline();
      this.#current = undefined;
    }
  }

  /** The operation itself, with the recovery rules of docs/tasks.md (rule 4). Resolves with the VM, if the operation has one. */
  async #execute(task: Pending, ctx: OperationContext): Promise<Vm | undefined> {
    const driver = this.#opts.driver;
    const op = task.operation;
    switch (op.kind) {
      case 'vm.create': {
        // After a crash the VM may exist already: then it is the result, not a second VM.
        // Without a crash a VM of that name makes createVm fail (`invalid_spec`), as it should.
        const existing = (await driver.listVms()).find((vm) => vm.name === op.spec.name);
        if (existing && task.recovering) {
          this.#log.info({ task: task.taskId, vm: existing.id }, 'resumed create: the VM exists; taking it as the result');
          return existing;
        }
        try {
          return await driver.createVm(op.spec, ctx);
        } catch (err) {
          // Aborted midway, a real hypervisor may have made the VM anyway; then the task did
          // create it, and saying "cancelled" would hide a VM from the operator.
          if (!existing && err === ctx.signal.reason) {
            const made = (await driver.listVms().catch(() => [])).find((vm) => vm.name === op.spec.name);
            if (made) return made;
          }
          throw err;
        }
      }
      case 'vm.power':
        return driver.powerVm(op.vmId, op.action, ctx);
      case 'vm.update':
        return driver.updateVm(op.vmId, op.patch, ctx);
      case 'vm.delete':
        try {
          await driver.deleteVm(op.vmId, ctx);
        } catch (err) {
          // The journal says we had started deleting it before the crash: gone means done.
          if (!(task.recovering && isDriverError(err, 'not_found'))) throw err;
          this.#log.info({ task: task.taskId, vm: op.vmId }, 'resumed delete: the VM is gone already');
        }
        return undefined;
      case 'vm.deploy':
        return this.#deploy(task, op, ctx);
      case 'device.patch': {
        if (!driver.applyPatch) throw new TaskFailure('unsupported', patchUnsupportedReason(driver.kind));
        // Download 0–50 %, apply 50–100 %.
        const file = await this.#artifact(task, op.artifactId, scaled(ctx, 0, 50), 'patch');
        const { manifest } = task.artifacts.find((g) => g.manifest.id === op.artifactId)!;
        await driver.applyPatch(file, manifest, scaled(ctx, 50, 100));
        return undefined;
      }
      case 'agent.update': {
        const updater = this.#opts.agentUpdater;
        if (!updater) {
          throw new TaskFailure('unsupported', 'this agent does not run under its supervisor (pallas-agent supervise), so nothing would start the new version or roll it back');
        }
        const fetch = (): Promise<string> => this.#artifact(task, op.artifactId, ctx, 'agent');
        await updater.update({ taskId: task.taskId, healthySec: op.healthySec ?? 120, recovering: task.recovering, fetch }).catch((err: unknown) => {
          throw err instanceof UpdateError ? new TaskFailure(err.code, err.message) : err;
        });
        return undefined;
      }
      default: {
        const unknown: never = op;
        throw new TaskFailure('unsupported', `this agent cannot run "${(unknown as { kind: string }).kind}" tasks`);
      }
    }
  }

  /** `vm.deploy`: open the OVA on the device, then the same recovery rule as `vm.create`. */
  async #deploy(task: Pending, op: Extract<TaskOperation, { kind: 'vm.deploy' }>, ctx: OperationContext): Promise<Vm> {
    const driver = this.#opts.driver;
    if (!driver.deployVm) throw new TaskFailure('unsupported', `the ${driver.kind} driver cannot deploy OVAs yet`);
    // From an artifact: download 0–50 %, deploy 50–100 %. From a file: deploy 0–100 %.
    const fromArtifact = op.source.kind === 'artifact';
    const path = op.source.kind === 'file' ? op.source.path : await this.#artifact(task, op.source.artifactId, scaled(ctx, 0, 50), 'ova');
    if (fromArtifact) ctx = scaled(ctx, 50, 100);
    // Imported here: the OVF parser (fast-xml-parser) is loaded only by an agent that deploys.
    const { openOva } = await import('../ova/ova-package.js');
    const ova = await openOva(path);
    const name = op.name ?? ova.descriptor.name;
    const existing = (await driver.listVms()).find((vm) => vm.name === name);
    if (existing && task.recovering) {
      this.#log.info({ task: task.taskId, vm: existing.id }, 'resumed deploy: the VM exists; taking it as the result');
      return existing;
    }
    try {
      return await driver.deployVm(ova, name, ctx);
    } catch (err) {
      if (!existing && err === ctx.signal.reason) {
        const made = (await driver.listVms().catch(() => [])).find((vm) => vm.name === name);
        if (made) return made;
      }
      throw err;
    }
  }

  /**
   * The verified local file of an artifact the task names, downloaded (or resumed) through the
   * fetcher with the grant the task came with. `kind`, when given, is the kind the operation
   * needs (the manager checks it too; a device never trusts that alone). Progress goes to
   * `ctx` as 0–100 of the bytes: scale it (`scaled`) to leave room for what follows.
   */
  async #artifact(task: Pending, artifactId: string, ctx: OperationContext, kind?: ArtifactKind): Promise<string> {
    if (!this.#opts.fetcher) throw new TaskFailure('unsupported', 'this agent cannot download artifacts');
    const grant = task.artifacts.find((g) => g.manifest.id === artifactId);
    if (!grant) throw new ArtifactError('artifact_not_found', `the task names artifact ${artifactId} but came without a grant for it (the artifact may have been deleted); retry the task`);
    if (kind && grant.manifest.kind !== kind) throw new ArtifactError('artifact_invalid', `artifact ${artifactId} is a ${grant.manifest.kind} artifact; ${task.operation.kind} needs ${kind}`);
    // The URL is read at each attempt from the task's latest grant: a resend after a reconnect
    // brings a fresh one, and a download whose URL expired goes on with it.
    const live: ArtifactGrant = { ...grant, get url() { return (task.artifacts.find((g) => g.manifest.id === artifactId) ?? grant).url; } };
    return this.#opts.fetcher.fetch(live, ctx);
  }

  /**
   * The task is over: its artifacts' files may go (an OVA once deployed is not needed), unless
   * a queued task names the same artifact and would download it again.
   */
  async #releaseArtifacts(task: Pending): Promise<void> {
    const fetcher = this.#opts.fetcher;
    if (!fetcher || this.#stopped) return;
    for (const grant of task.artifacts) {
      const id = grant.manifest.id;
      if (this.#queue.some((p) => p.artifacts.some((g) => g.manifest.id === id))) continue;
      await fetcher.release(id).catch((err: unknown) => this.#log.warn({ task: task.taskId, artifact: id, err: describeError(err) }, 'could not remove a downloaded artifact'));
    }
  }

  #failure(task: Pending, err: unknown, signal: AbortSignal): TaskResult {
    if (signal.aborted && err === signal.reason && err instanceof TaskAborted) return this.#result(task.taskId, err.outcome);
    if (isDriverError(err) || err instanceof TaskFailure || err instanceof ArtifactError || err instanceof OvaError) {
      return this.#result(task.taskId, 'failed', { error: { code: err.code, message: err.message.slice(0, 2048) } });
    }
    this.#log.error({ task: task.taskId, err: describeError(err) }, 'task failed on an unexpected error');
    return this.#result(task.taskId, 'failed', { error: { code: 'internal', message: `agent error: ${describeError(err)}`.slice(0, 2048) } });
  }

  /** Journals the result (and the start, for a task that never ran), then publishes it. */
  async #finish(task: Pending, result: TaskResult): Promise<void> {
    try {
      if (!this.#journal.get(task.taskId)) await this.#journal.recordStart(task.taskId, task.operation, task.deadlineAt, task.artifacts);
      if (this.#stopped) return;
      await this.#journal.recordResult(result);
    } catch (err) {
      // Sent once, then; should it be lost, the manager's deadline sweep still ends the task.
      this.#log.error({ task: task.taskId, err: describeError(err) }, 'cannot journal the task result');
    }
    if (this.#stopped) return;
    this.#log.info({ task: task.taskId, outcome: result.outcome, error: result.error }, 'task ended');
    this.emit('task-finished', result);
    this.#sendResult(result);
    this.#opts.onTaskEnded?.();
  }

  #result(taskId: string, outcome: TaskOutcome, extra: Pick<TaskResult, 'vm' | 'error'> = {}): TaskResult {
    return { taskId, outcome, ...extra, finishedAt: new Date().toISOString() };
  }

  #sendResult(result: TaskResult): void {
    if (this.#stopped) return;
    this.#sentAt.set(result.taskId, performance.now());
    this.#opts.publish('task/result', result).catch((err: unknown) =>
      this.#log.debug({ task: result.taskId, err: describeError(err) }, 'result not delivered yet; re-sent until acknowledged'),
    );
  }

  /**
   * Progress for one task: pct 0 at once (it tells the manager the task runs), then the
   * driver's reports, at most one per `progressIntervalMs`, the latest winning. What is
   * pending when the task ends is dropped: the result says more.
   *
   * 100 % waits one interval even when the last report is older than that: a driver says 100 %
   * as its operation ends, the result follows at once, and a progress message sent then was
   * pure cost (a message through the broker, a row update and a live event on the manager).
   * Counted in a fan-out of 2,000 `vm.create` on a loaded fleet: 4.0-4.7 progress messages per
   * task, one of them this. An operation that goes on after a step reached 100 % (a download
   * before an install) still shows it, one interval late.
   */
  #progress(taskId: string): { update: (pct: number, message?: string) => void; stop: () => void } {
    const every = this.#opts.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
    let highest = 0;
    let sentAt = 0;
    let pending: { pct: number; message: string | undefined } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const send = (pct: number, message?: string): void => {
      if (this.#stopped) return;
      sentAt = performance.now();
      const msg: TaskProgress = { taskId, pct, ...(message ? { message: message.slice(0, 255) } : {}), at: new Date().toISOString() };
      this.#opts.publish('task/progress', msg).catch((err: unknown) =>
        this.#log.debug({ task: taskId, err: describeError(err) }, 'progress not delivered'),
      );
    };
    const flush = (): void => {
      timer = undefined;
      if (pending) send(pending.pct, pending.message);
      pending = undefined;
    };
    send(0);
    return {
      update: (pct, message) => {
        highest = Math.max(highest, Math.min(100, Math.round(Number.isFinite(pct) ? pct : 0)));
        pending = { pct: highest, message };
        if (timer) return;
        const wait = highest >= 100 ? every : sentAt + every - performance.now();
        if (wait <= 0) flush();
        else timer = setTimeout(flush, wait);
      },
      stop: () => {
        clearTimeout(timer);
        timer = undefined;
        pending = undefined;
      },
    };
  }
}

/** A context whose progress 0–100 lands in `from`–`to` of the task's: steps of one task share the bar. */
function scaled(ctx: OperationContext, from: number, to: number): OperationContext {
  return { ...ctx, progress: (pct, message) => ctx.progress(from + ((to - from) * Math.min(100, Math.max(0, pct))) / 100, message) };
}

/** Node fires a setTimeout longer than this (24.8 days) at once; task deadlines reach 30 days. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Calls `fn` at `deadline` (monotonic ms), however far; returns a function that cancels it. */
function timerAt(deadline: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = deadline - performance.now();
    if (left <= 0) return fn();
    // unref: a task stuck in a hung driver must not keep a process alive on its own.
    timer = setTimeout(arm, Math.min(left, MAX_DELAY_MS)).unref();
  };
  arm();
  return () => clearTimeout(timer);
}
