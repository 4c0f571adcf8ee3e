import { readFile, stat } from 'node:fs/promises';
import type { Vm } from '@pallas/protocol';
import { writeFileAtomic } from '../../util/atomic-file.js';

/** What a sim host keeps on disk: its VMs and, for tests and demos, what was done to them. */
export interface SimSnapshot {
  vms: Vm[];
  nextId: number;
  /** VM id → index of the datastore holding its disk. */
  placement: Record<string, number>;
  /**
   * The last 1,000 operations the driver was asked for, oldest first: each change it made, and
   * each call it refused (`refused`: the error code), so that a task run twice shows as two
   * calls even when the host refused the second one (a VM name already taken).
   */
  history: SimHistoryEntry[];
  /** The last patch applied to the host (`applyPatch`); its name and version are the reported build. Absent: none. */
  patch?: SimPatch;
}

export interface SimHistoryEntry {
  op: string;
  /** The VM changed, or the one a refused call named (none for a refused create). */
  vmId?: string;
  /** The name asked for, on creates. */
  name?: string;
  at: string;
  /** Set on a call that changed nothing: the error code it failed with (`aborted` if cancelled). */
  refused?: string;
}

export interface SimPatch {
  artifactId: string;
  name: string;
  version: string;
  sha256: string;
  at: string;
}

/**
 * Makes a sim host outlive the agent process, as a real hypervisor does: the state is written
 * (atomically) after every change, read back at start, and read again whenever someone else
 * changed the file, which is how a test or a demo makes a change "by hand on the host".
 */
export class SimStateFile {
  readonly #path: string;
  #mtimeMs = 0;

  constructor(path: string) {
    this.#path = path;
  }

  get path(): string {
    return this.#path;
  }

  async load(): Promise<SimSnapshot | null> {
    let text: string;
    try {
      const s = await stat(this.#path);
      text = await readFile(this.#path, 'utf8');
      this.#mtimeMs = s.mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as SimSnapshot;
  }

  /** The file changed since this process last read or wrote it. */
  async changedOnDisk(): Promise<boolean> {
    try {
      return (await stat(this.#path)).mtimeMs !== this.#mtimeMs;
    } catch {
      return false;
    }
  }

  async save(snapshot: SimSnapshot): Promise<void> {
    await writeFileAtomic(this.#path, `${JSON.stringify(snapshot, null, 1)}\n`, 0o600);
    this.#mtimeMs = (await stat(this.#path)).mtimeMs;
  }
}
