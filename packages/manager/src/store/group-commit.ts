import { CompiledQuery, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Db } from './store.js';

type Work<T> = (tx: Transaction<Database>) => Promise<T>;
interface Queued {
  work: Work<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Units per shared transaction: bounds how long one batch holds the connection. */
const MAX_BATCH = 200;

// Compiled once: two of them run around every unit of a batch, and a `sql` template would be
// built and compiled anew at each call.
const SAVEPOINT = CompiledQuery.raw('savepoint unit');
const RELEASE = CompiledQuery.raw('release savepoint unit');
const ROLLBACK = CompiledQuery.raw('rollback to savepoint unit');

/**
 * Runs units of work that each need a transaction of their own, several to one commit, on
 * SQLite's single connection (where transactions run one after the other anyway).
 *
 * Why: on SQLite most of a short write transaction's cost is its commit, which writes every
 * page the transaction touched (the table's and each index's) to the WAL. An enrollment burst
 * is hundreds of such transactions touching the same few pages (the token's row, the device
 * indexes' right-hand leaves). Units queued in the same turn of the event loop (the requests
 * that arrived together) run in one transaction, each inside a savepoint of its own.
 *
 * What a unit sees and does is what its own transaction would have seen and done: units run
 * one at a time in queue order, each sees the ones before it (as if they had committed), and
 * a unit that throws is rolled back to its savepoint alone, its error given to its caller;
 * the others go on. A unit's promise settles only after the shared commit, so nobody is told
 * "done" before it is durable. If the commit itself fails, every unit of the batch gets that
 * error (none of them happened).
 */
export class GroupCommit {
  readonly #db: Db;
  readonly #queue: Queued[] = [];
  #scheduled = false;

  constructor(db: Db) {
    this.#db = db;
  }

  run<T>(work: Work<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After the poll phase: every request read in this turn has queued its unit by then.
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, MAX_BATCH);
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
    try {
      await this.#db.transaction().execute(async (tx) => {
        for (const unit of batch) {
          // One unit alone needs no savepoint: its error rolls the whole transaction back.
          if (batch.length === 1) {
            outcomes.push({ ok: true, value: await unit.work(tx) });
            continue;
          }
          await tx.executeQuery(SAVEPOINT);
          try {
            const value = await unit.work(tx);
            await tx.executeQuery(RELEASE);
            outcomes.push({ ok: true, value });
          } catch (err) {
            // Undo this unit's writes only; release the savepoint so the next one starts clean.
            await tx.executeQuery(ROLLBACK);
            await tx.executeQuery(RELEASE);
            outcomes.push({ ok: false, err });
          }
        }
      });
      batch.forEach((unit, i) => {
        const o = outcomes[i]!;
        if (o.ok) unit.resolve(o.value);
        else unit.reject(o.err);
      });
    } catch (err) {
      // A lone unit's own error, or a commit that failed: nothing of the batch happened.
      for (const unit of batch) unit.reject(err);
    } finally {
      if (this.#queue.length > 0) setImmediate(() => void this.#flush());
      else this.#scheduled = false;
    }
  }
}
