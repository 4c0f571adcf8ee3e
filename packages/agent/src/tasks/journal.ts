import { writeSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactGrant, TaskOperation, TaskResult } from '@pallas/protocol';
import type { Logger } from '../util/line-logger.js';
import { checkJournalRecord } from '../checks/index.js';
import type { JournalRecord } from './journal-schema.js';
import { AgentError, AgentErrorCodes, describeError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export const JOURNAL_FILE = 'tasks.journal';

/** The longest an unsynced record waits for company before it is written alone. */
const LAZY_MS = 1000;

interface LazyBatch {
  lines: string[];
  written: Promise<void>;
  settle: (err?: unknown) => void;
  timer: NodeJS.Timeout;
}

/** What the journal knows of one task: started; maybe ended (`result`); maybe acknowledged. */
export interface JournalEntry {
  readonly taskId: string;
  readonly operation: TaskOperation;
  /** Wall-clock epoch ms. */
  readonly deadlineAt: number;
  readonly startedAt: number;
  /** The grants the task came with (tasks that use artifacts). */
  readonly artifacts?: ArtifactGrant[];
  result?: TaskResult;
  /** When the manager's ack was journaled; the entry is a tombstone from then on. */
  ackedAt?: number;
}

export interface TaskJournalOptions {
  /** The agent's state dir. */
  dir: string;
  logger: Logger;
  /** Rewrite the file once it holds more records than this. Default 1,000. */
  compactAfter?: number;
  /** How long acked entries stay as tombstones, so a late duplicate `run` is recognised. Default 7 days. */
  tombstoneMs?: number;
  /** Wall clock. Default Date.now. */
  now?: () => number;
}

/**
 * `tasks.journal`: what the agent started and finished, as JSON lines, appended one at a time.
 * `start` and `result` are fsync'd before the caller goes on (that is what makes a task run
 * once across kill -9); `acked` is not (lost, it only means one more re-send of the result),
 * and goes out with the next record or within a second.
 *
 * The in-memory view is updated when a record is asked for, before it is on disk, so the
 * runner's checks ("is this task known?") never race with a pending write.
 */
export class TaskJournal {
  readonly #opts: Readonly<TaskJournalOptions>;
  readonly #path: string;
  readonly #entries = new Map<string, JournalEntry>();
  readonly #now: () => number;
  #fh: FileHandle | undefined;
  #records = 0;
  /** Compact when `#records` passes this: `compactAfter`, or twice what the last compaction kept. */
  #compactAt: number;
  /** Appends run one after the other on this chain. */
  #tail: Promise<void> = Promise.resolve();
  /** Records waiting to go out with the next write (see #append). */
  #lazy: LazyBatch | undefined;
  #closed = false;

  private constructor(options: TaskJournalOptions) {
    this.#opts = Object.freeze({ ...options });
    this.#path = join(options.dir, JOURNAL_FILE);
    this.#now = options.now ?? Date.now;
    this.#compactAt = options.compactAfter ?? 1000;
  }

  /** Reads the journal (creating it if missing) and opens it for appending. */
  static async open(options: TaskJournalOptions): Promise<TaskJournal> {
    const journal = new TaskJournal(options);
    try {
      await journal.#load();
    } catch (err) {
      throw new AgentError(AgentErrorCodes.STATE_INVALID, `cannot open the task journal ${journal.#path}: ${describeError(err)}`, { cause: err });
    }
    return journal;
  }

  get path(): string {
    return this.#path;
  }

  get(taskId: string): JournalEntry | undefined {
    return this.#entries.get(taskId);
  }

  /** Entries with a result the manager has not acknowledged, oldest first. */
  unacked(): JournalEntry[] {
    return [...this.#entries.values()].filter((e) => e.result && e.ackedAt === undefined);
  }

  /** Entries started but never finished: a crash interrupted them. Oldest first. */
  interrupted(): JournalEntry[] {
    return [...this.#entries.values()].filter((e) => !e.result);
  }

  recordStart(taskId: string, operation: TaskOperation, deadlineAt: number, artifacts?: ArtifactGrant[]): Promise<void> {
    if (this.#entries.has(taskId)) return Promise.reject(new Error(`task ${taskId} is already in the journal`));
    const at = this.#now();
    const grants = artifacts && artifacts.length > 0 ? { artifacts } : {};
    this.#entries.set(taskId, { taskId, operation, deadlineAt, startedAt: at, ...grants });
    return this.#append({ type: 'start', taskId, operation, deadlineAt, at, ...grants }, true);
  }

  recordResult(result: TaskResult): Promise<void> {
    const entry = this.#entries.get(result.taskId);
    if (!entry) return Promise.reject(new Error(`task ${result.taskId} was never started`));
    entry.result = result;
    return this.#append({ type: 'result', taskId: result.taskId, result }, true);
  }

  /** The manager stored the result. Unknown or unfinished tasks are ignored (false). */
  recordAcked(taskId: string): Promise<boolean> {
    const entry = this.#entries.get(taskId);
    if (!entry?.result || entry.ackedAt !== undefined) return Promise.resolve(false);
    entry.ackedAt = this.#now();
    return this.#append({ type: 'acked', taskId, at: entry.ackedAt }, false).then(() => true);
  }

  /** Waits for pending appends, then closes the file. Later records are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#lazy) await this.#write('', false).catch(() => {});
    this.#closed = true;
    await this.#tail;
    await this.#fh?.close();
    this.#fh = undefined;
  }

  async #load(): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    // A crash in the middle of an append leaves a last line without its newline: that record
    // was never acknowledged to anyone, so it is dropped, and cut off before appending more.
    const torn = lines.pop()!;
    if (torn !== '') this.#opts.logger.warn({ path: this.#path, bytes: torn.length }, 'task journal ends in a torn record (crash mid-write); ignoring it');
    for (const [i, line] of lines.entries()) {
      this.#records++;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        record = undefined;
      }
      // Not a crash artefact (only the last line can be torn): a damaged disk or a hand edit.
      // Skipping the line keeps the device working; the log says which task may be affected.
      if (checkJournalRecord.check(record)) this.#apply(record);
      else this.#opts.logger.error({ path: this.#path, line: i + 1, error: await checkJournalRecord.explain(record) }, 'skipping an invalid task journal record');
    }
    this.#fh = await open(this.#path, 'a', 0o600);
    if (torn !== '') {
      await this.#fh.truncate(Buffer.byteLength(text) - Buffer.byteLength(torn));
      await this.#fh.datasync();
    }
  }

  #apply(record: JournalRecord): void {
    const entry = this.#entries.get(record.taskId);
    switch (record.type) {
      case 'start':
        this.#entries.set(record.taskId, {
          taskId: record.taskId, operation: record.operation, deadlineAt: record.deadlineAt, startedAt: record.at,
          ...(record.artifacts ? { artifacts: record.artifacts } : {}),
        });
        return;
      case 'result':
        if (entry) entry.result = record.result;
        return;
      case 'acked':
        if (entry) entry.ackedAt = record.at;
        return;
    }
  }

  /**
   * Appends a record. A record that needs no fsync (`acked`) waits up to `LAZY_MS` to share the
   * next write: one write per record was the agent's main cost in a fan-out, and an `acked`
   * lost in a crash only means one more re-send of the result.
   */
  #append(record: JournalRecord, sync: boolean): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('task journal is closed'));
    const line = `${JSON.stringify(record)}\n`;
    if (!sync) {
      this.#lazy ??= this.#startLazyBatch();
      this.#lazy.lines.push(line);
      return this.#lazy.written;
    }
    return this.#write(line, true);
  }

  #startLazyBatch(): LazyBatch {
    let settle!: (err?: unknown) => void;
    const written = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    const timer = setTimeout(() => void this.#write('', false).catch(() => {}), LAZY_MS);
    return { lines: [], written, settle, timer };
  }

  /** Writes the waiting lazy records and `text`, in that order, on the append chain. */
  #write(text: string, sync: boolean): Promise<void> {
    const lazy = this.#lazy;
    this.#lazy = undefined;
    if (lazy) clearTimeout(lazy.timer);
    const records = (lazy?.lines.length ?? 0) + (text ? 1 : 0);
    const write = this.#tail.then(async () => {
      // The write itself is synchronous: a few hundred bytes into the page cache take
      // microseconds, less than handing them to libuv's thread pool and back, which was the
      // agent's main cost per task in a fan-out. The fdatasync, which waits for the disk, is not.
      const line = `${lazy?.lines.join('') ?? ''}${text}`;
      writeSync(this.#fh!.fd, line);
      if (sync) await this.#fh!.datasync();
      this.#records += records;
      if (this.#records > this.#compactAt) await this.#compact();
    });
    void write.then(() => lazy?.settle(), (err: unknown) => lazy?.settle(err));
    // One failed write must not block the ones after it; its caller gets the error.
    this.#tail = write.catch(() => {});
    return write;
  }

  /**
   * Rewrites the file with only what still matters: unfinished and unacknowledged entries, and
   * tombstones younger than `tombstoneMs`. Atomic (temp file + rename), so a crash leaves the
   * old journal or the new one. Runs on the append chain, so nothing is written meanwhile.
   */
  async #compact(): Promise<void> {
    const horizon = this.#now() - (this.#opts.tombstoneMs ?? 7 * 86_400_000);
    const lines: string[] = [];
    for (const [taskId, e] of this.#entries) {
      if (e.ackedAt !== undefined && e.ackedAt < horizon) {
        this.#entries.delete(taskId);
        continue;
      }
      // A finished task's grants are of no more use (and their URLs expire): only open ones keep them.
      const grants = !e.result && e.artifacts ? { artifacts: e.artifacts } : {};
      lines.push(JSON.stringify({ type: 'start', taskId, operation: e.operation, deadlineAt: e.deadlineAt, at: e.startedAt, ...grants } satisfies JournalRecord));
      if (e.result) lines.push(JSON.stringify({ type: 'result', taskId, result: e.result } satisfies JournalRecord));
      if (e.ackedAt !== undefined) lines.push(JSON.stringify({ type: 'acked', taskId, at: e.ackedAt } satisfies JournalRecord));
    }
    await writeFileAtomic(this.#path, lines.map((l) => `${l}\n`).join(''), 0o600);
    await this.#fh!.close();
    this.#fh = await open(this.#path, 'a', 0o600);
    this.#opts.logger.debug({ before: this.#records, after: lines.length }, 'task journal compacted');
    this.#records = lines.length;
    // Many live entries (a device offline for days) must not make every append a rewrite.
    this.#compactAt = Math.max(this.#opts.compactAfter ?? 1000, 2 * lines.length);
  }
}
