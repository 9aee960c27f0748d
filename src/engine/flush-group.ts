/**
 * Explicit flushes of one store share a commit (docs/design.md §3.30). Each `flush` op the store's actor applies
 * takes its tier's batch at once (exactly the writes made before its call: core.ts `flushJoining`), and the batch
 * joins this group instead of committing alone; the actor commits the group before any op that is not a write or a
 * flush (so before it waits on anything), at group commit's bound (2,000 puts applied or joined; one batch above it
 * stays one transaction, as a flush alone is) and at the end of each message: the group never outlives a
 * synchronous run over a message. The batches commit as ONE backend transaction, in the order they were
 * taken (a later batch overwrites an earlier one, as separate commits would). If it fails, every batch is put back
 * as a failed flush puts its own back, newest first (each goes back under what is newer), and every flush of the
 * group rejects with the same error. Anything else that writes to the backend (a triggered, timed or retried flush,
 * a delete, a job's step, a close) commits the group first (core.ts `exclusive`), so nothing lands ahead of a batch
 * taken before it. Only for synchronous backends whose batches are atomic (SQLite, memory): a file store's batch is
 * not atomic, a PostgreSQL store's commit is not synchronous, and their flushes commit one by one as before.
 */
import type { BatchOp, StorageBackend } from "../backend/types.js";
import type { FlushGroup } from "../tier/core.js";

export class StoreFlushGroup implements FlushGroup {
  /** The ops of the batches joined so far, in taking order, and how each batch hears the outcome. */
  #ops: BatchOp[][] = [];
  #finishes: Array<(err: unknown) => void> = [];
  /** Ops joined since the last commit (the actor commits past group commit's bound, MAX_HELD_PUTS). */
  #held = 0;

  /** `committed`: hears each commit of a group (the actor counts backend transactions). */
  constructor(
    private readonly writeBatch: (ops: readonly BatchOp[]) => void,
    private readonly committed: () => void,
  ) {}

  /** A group for `backend`'s store, or undefined where its flushes must commit alone (see above). */
  static for(backend: StorageBackend, committed: () => void): StoreFlushGroup | undefined {
    if (!backend.supports.sync || !backend.supports.atomicBatch || backend.writeBatch === undefined) return undefined;
    return new StoreFlushGroup((ops) => void backend.writeBatch!(ops), committed);
  }

  join(ops: readonly BatchOp[], finish: (err: unknown) => void): void {
    this.#ops.push(ops as BatchOp[]);
    this.#finishes.push(finish);
    this.#held += ops.length;
  }

  get held(): number {
    return this.#held;
  }

  commit(): void {
    const finishes = this.#finishes;
    if (finishes.length === 0) return;
    const batches = this.#ops;
    // Taken before writing: a flush a finishing batch starts (a commit watcher's) forms a group of its own.
    this.#ops = [];
    this.#finishes = [];
    this.#held = 0;
    let ops: readonly BatchOp[] = batches[0]!;
    if (batches.length > 1) {
      const all: BatchOp[] = [];
      for (const batch of batches) for (const op of batch) all.push(op);
      ops = all;
    }
    try {
      this.writeBatch(ops);
    } catch (err) {
      const error = err ?? new Error("the flush group's commit failed");
      // Newest first: each batch goes back under the batches (and writes) newer than it, as after its own failure.
      for (let i = finishes.length - 1; i >= 0; i--) finishes[i]!(error);
      return;
    }
    this.committed();
    for (const finish of finishes) finish(undefined);
  }
}
