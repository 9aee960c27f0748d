/**
 * Explicit flushes of one store share a commit (docs/design.md §3.30). Each `flush` op the store's actor applies
 * takes its tier's batch at once (exactly the writes made before its call: core.ts `flushJoining`), and the batch
 * joins this group instead of committing alone; the actor commits the group before any op that is not a write or a
 * flush (so before it waits on anything), at group commit's bound (2,000 puts applied or joined; one batch above it
 * stays one transaction, as a flush alone is) and at the end of the actor's run over the messages queued on its port
 * (group commit's turn end): a backlog of handlers' messages, each a save and a flush, shares one commit, and no
 * flush waits for a message that was not queued yet. The tiers' triggered flushes that group commit holds to that
 * end (sync-through, compactEvery) are ordered here too: their writes are owed to the store from their call, so
 * another tier's batch taken, or write owed, after them takes them first (`owes`, `taking`), and a flush of their
 * tier answers for them. The batches commit as ONE backend transaction, in the order they were
 * taken (a later batch overwrites an earlier one, as separate commits would). If it fails, each batch is committed
 * alone, in taking order, which gives exactly the outcome of separate commits (nothing of the group was written): a
 * row one tier's batch can never store fails that tier's flushes only. A tier's batches after one that failed alone
 * fail with it unwritten (committed alone, the later flush would have taken the failed batch back with its own).
 * Where a batch failed only because another handle took one of its new keys (an append-log's segment numbers), its
 * tier numbers it again and writes it alone, and the tier's later batches settle with that retry instead of
 * rejecting while it stores their writes (task 194): written alone after it, or put back under it if it failed.
 * Failed batches are put back as a failed flush puts its own back, newest first (each goes back under what is
 * newer). A flush of a tier that takes nothing while a batch of that tier waits here joins as an empty member: it
 * answers for that batch's writes, in taking order. Anything else that writes to the backend (a triggered, timed or retried flush,
 * a delete, a job's step, a close) commits the group first (core.ts `exclusive`), so nothing lands ahead of a batch
 * taken before it. Batches join on synchronous backends (SQLite, memory, a file store): a PostgreSQL store's commit is
 * not synchronous, and its flushes commit one by one as before; there the group only keeps the call order (an owed
 * batch commits alone before the batch taken after it). A file store's batch is not atomic (a crash or a failure in
 * its rename phase leaves a prefix of it applied), yet joining keeps what a flush promises: its promise resolves only
 * once the one round covering its writes is durable (every file fsynced, then the directory), and a failed group
 * recommits each batch alone, as separate commits would have been made, each rewriting whatever of it the group
 * left applied. Before, each flush of a file store paid its own round (a directory fsync, the files of its keys):
 * a close behind thousands of queued flushes took minutes (task 182); joined, a group costs one directory fsync
 * and one file per op it stores. Each op lands at its own place, a key two batches put too (the backend writes a
 * key's ops next to each other once, never one at another's place): a crash leaves a prefix of the group in taking
 * order, so a shared-WAL record lands no later than the frames after it (review r188).
 */
import type { BatchOp, ExpectedValue, StorageBackend } from "../backend/types.js";
import { expectationFailed, expectationFailure, type FlushGroup, type TierCore } from "../tier/core.js";

/** `#alone`'s mark of a batch that waits for its tier's earlier batch's retry (`#settle`). */
const RIDING: unique symbol = Symbol("riding");

/** A conditional batch (StorageBackend.writeBatchIf with a list of expected values): true when applied. */
type WriteIf = (expects: readonly ExpectedValue[], ops: readonly BatchOp[]) => boolean;

export class StoreFlushGroup implements FlushGroup {
  /** The ops of the batches joined so far, in taking order, and how each batch hears the outcome. */
  #ops: BatchOp[][] = [];
  /** Each batch's expectations (an append-log's new segment keys), undefined for an unconditional one. */
  #expects: Array<readonly ExpectedValue[] | undefined> = [];
  #finishes: Array<(err: unknown) => unknown> = [];
  /** Each batch's tier (a tier's later batches fail with its failed one), and the tiers with a batch here. */
  #owners: unknown[] = [];
  readonly #holding = new Set<unknown>();
  /** Ops joined since the last commit (the actor commits past group commit's bound, MAX_HELD_PUTS). */
  #held = 0;
  /** The tier whose held triggered flush owes the store its latest writes (`owes`); at most one at a time. */
  #owing: TierCore<unknown> | undefined;

  /** `committed`: hears each commit of a group (the actor counts backend transactions). */
  constructor(
    private readonly writeBatch: ((ops: readonly BatchOp[]) => void) | undefined,
    private readonly committed: () => void,
    private readonly writeIf?: WriteIf,
  ) {
    this.joins = writeBatch !== undefined;
    this.joinsConditional = this.joins && writeIf !== undefined;
  }

  readonly joins: boolean;
  readonly joinsConditional: boolean;

  /** The group of `backend`'s store: batches join only where they may (see above); else it keeps call order alone. */
  static for(backend: StorageBackend, committed: () => void): StoreFlushGroup {
    // Atomic or not (a file store, see above): what joining needs is a commit that ends before the actor goes on.
    const joins = backend.supports.sync && backend.writeBatch !== undefined;
    // Several batches' expectations checked in one step: supports.conditionalKeys. Only where the batch is atomic:
    // a file store's check and renames are not one step against a handle in another thread of the process (they
    // share the store lock), and a group mixing puts with an append-log's claims loses link(2)'s exclusive create
    // there, so such batches write alone as claims (review r193: two engines on one file store lost appends).
    const conditional =
      backend.supports.conditionalKeys === true && backend.supports.atomicBatch && typeof backend.writeBatchIf === "function";
    return new StoreFlushGroup(
      joins ? (ops) => void backend.writeBatch!(ops) : undefined,
      committed,
      joins && conditional ? (expects, ops) => backend.writeBatchIf!(expects, ops) === true : undefined,
    );
  }

  /**
   * `expects`: what the batch's keys must hold for it to apply (an append-log's new segment keys: no value, as
   * another handle of the store may take one, design §3.30). The group's one batch is then conditional on every
   * batch's expectations; if they fail, the batches commit alone as after a failed commit, the one whose keys were
   * taken failing with `expectationFailed()` (its tier numbers it again and writes it), and its tier's later ones,
   * unwritten, settling with that retry (`#settle`).
   */
  join(ops: readonly BatchOp[], finish: (err: unknown) => unknown, owner: unknown, expects?: readonly ExpectedValue[]): void {
    if (this.writeBatch === undefined) throw new Error("flush group: a batch joined a store whose batches commit alone");
    if (expects !== undefined && expects.length > 0 && this.writeIf === undefined) {
      throw new Error("flush group: a conditional batch joined a store without conditional batches");
    }
    this.#ops.push(ops as BatchOp[]);
    this.#expects.push(expects !== undefined && expects.length > 0 ? expects : undefined);
    this.#finishes.push(finish);
    this.#owners.push(owner);
    this.#holding.add(owner);
    this.#held += ops.length;
  }

  get held(): number {
    return this.#held;
  }

  holds(owner: unknown): boolean {
    return this.#holding.has(owner);
  }

  owes(core: TierCore<unknown>): void {
    if (this.#owing === core) return; // a run of one tier's writes stays one batch
    this.#takeOwed();
    this.#owing = core;
  }

  taking(core: TierCore<unknown>): void {
    if (this.#owing === core) this.#owing = undefined; // its batch takes them
    else this.#takeOwed();
  }

  /** The owing tier's held flush runs now: its batch joins (or, where it cannot join, commits the group and writes). */
  #takeOwed(): void {
    const owing = this.#owing;
    if (owing === undefined) return;
    this.#owing = undefined;
    owing.flushDeferred();
  }

  commit(): void {
    this.#takeOwed();
    const finishes = this.#finishes;
    if (finishes.length === 0) return;
    const batches = this.#ops;
    const expects = this.#expects;
    const owners = this.#owners;
    // Taken before writing: a flush a finishing batch starts (a commit watcher's) forms a group of its own.
    this.#ops = [];
    this.#expects = [];
    this.#finishes = [];
    this.#owners = [];
    this.#holding.clear();
    this.#held = 0;
    let ops: readonly BatchOp[] = batches[0]!;
    if (batches.length > 1) {
      const all: BatchOp[] = [];
      for (const batch of batches) for (const op of batch) all.push(op);
      ops = all;
    }
    let all: ExpectedValue[] | undefined;
    for (const e of expects) if (e !== undefined) (all ??= []).push(...e);
    let errors: unknown[] | undefined;
    try {
      // Conditional where a batch expects keys (an append-log's new segments): another handle's write of one of them
      // is never overwritten; the group is then committed batch by batch, and that batch is numbered again (retried).
      if (all === undefined) this.writeBatch!(ops); // batches joined: joins is true
      else if (!this.writeIf!(all, ops)) errors = this.#alone(batches, expects, owners, expectationFailed(), true);
    } catch (err) {
      errors = this.#alone(batches, expects, owners, err ?? new Error("the flush group's commit failed"));
    }
    if (errors === undefined) this.committed();
    else this.#settle(errors, batches, owners, finishes);
    // The committed ones, in taking order: each flush's account settles there, so in call order (a refusal is
    // reported by the first to answer).
    for (let i = 0; i < finishes.length; i++) if (errors?.[i] === undefined) finishes[i]!(undefined);
  }

  /**
   * The finishes of a failed commit's batches that did not commit alone. Failed ones first, newest first: each goes
   * back under the batches (and writes) newer than it, as after its own failure, before anything a committed one's
   * finish runs can write. A batch whose own expectations failed is numbered again and written alone by its tier in
   * its finish, which says whether that stored it. Then, in taking order, its tier's later members (`RIDING`): they
   * were not written, yet their flushes must not reject when their writes are then stored (task 194, review r193:
   * an empty member rejected store-busy while the retry stored the batch it answers for, and a caller appending
   * again stored twice). So each settles with the retry: once it stored the earlier batch, a batch hears
   * `expectationFailed(true)` and is numbered again and written alone after it (its tier's order kept), and an empty
   * member resolves; once it failed for good, its tier put them back under it (core.ts `laterTaken`), so they reject
   * with its error, unwritten.
   */
  #settle(errors: unknown[], batches: readonly BatchOp[][], owners: readonly unknown[], finishes: ReadonlyArray<(err: unknown) => unknown>): void {
    const retried = new Map<unknown, unknown>();
    for (let i = finishes.length - 1; i >= 0; i--) {
      const err = errors[i];
      if (err === undefined || err === RIDING) continue;
      const outcome = finishes[i]!(err);
      if (expectationFailure(err) === "own") retried.set(owners[i], outcome);
    }
    for (let i = 0; i < finishes.length; i++) {
      if (errors[i] !== RIDING) continue;
      const failed = retried.get(owners[i]);
      if (batches[i]!.length === 0) finishes[i]!(failed);
      else retried.set(owners[i], finishes[i]!(failed ?? expectationFailed(true)));
    }
  }

  /**
   * After the group's commit failed (`error`): commits each batch alone, in taking order, and returns each one's
   * error (undefined: committed; `RIDING`: unwritten behind a batch of its tier whose own expectations failed, it
   * settles with that one's retry, see `#settle`). Only after a failure, so sharing costs extra transactions only
   * then; with one batch to write, it failed alone already.
   */
  #alone(
    batches: readonly BatchOp[][],
    expects: ReadonlyArray<readonly ExpectedValue[] | undefined>,
    owners: readonly unknown[],
    error: unknown,
    /** The group's expectations failed (nothing thrown): each batch is tried alone, also a single one. */
    unmet = false,
  ): unknown[] {
    const writing = unmet || batches.filter((b) => b.length > 0).length > 1;
    const failed = new Map<unknown, unknown>();
    const errors: unknown[] = [];
    for (let i = 0; i < batches.length; i++) {
      const earlier = failed.get(owners[i]);
      // After a batch whose expectations failed, its tier's later ones wait: it writes itself anew first.
      let err: unknown = expectationFailure(earlier) === undefined ? earlier : RIDING;
      if (err === undefined && batches[i]!.length > 0) {
        err = error;
        if (writing) {
          try {
            const e = expects[i];
            if (e === undefined) this.writeBatch!(batches[i]!);
            else if (!this.writeIf!(e, batches[i]!)) throw expectationFailed();
            err = undefined;
          } catch (e) {
            err = e ?? error;
          }
          if (err === undefined) this.committed();
        }
        if (err !== undefined) failed.set(owners[i], err);
      }
      errors.push(err);
    }
    return errors;
  }
}
