/**
 * Group commit for a store actor: the triggered flushes (sync-through, compactEvery) of every tier an op touched
 * wait until the worker's event-loop turn ends, i.e. until every message already waiting on the port was applied,
 * so a backlog of N messages of sync-through writes commits in one transaction (one fsync) instead of N. Costs
 * nothing when messages arrive one at a time. An op that observes the backend or ends a transaction first commits
 * what is held, in every tier, so it sees exactly what it would inline.
 * Explicit flush() calls are not held (docs/design.md §3.30): a held flush would commit writes made after its call
 * with it, which a rollback must discard and which must land after another tier's later flush. They take their batch
 * at once and share a commit through the store's flush group instead (flush-group.ts), which the bound and the turn's
 * end commit too; a held triggered flush joins that group, taken before any batch of another tier taken after its
 * writes (their call order), so the turn commits once.
 * The tier core only records that a triggered flush is waiting (`deferTriggeredFlushes`); when it runs is decided here,
 * except that the core runs it early rather than let a newer write displace a value it owes (core.ts `displacing`).
 * A turn's hold is bounded by MAX_HELD_PUTS: a sustained stream leaves the whole backlog on the port, and one
 * transaction of all of it (58,000 frames measured) kept every value alive until its end, which cost the actor
 * ~40 % more CPU per frame in collection and a bigger transaction (docs/design.md §3.28).
 */
import type { TierCore } from "../tier/core.js";
import type { Op } from "./protocol.js";

/** Ops that observe the backend or end a transaction: writes queued before them must be written first. */
const BARRIERS = new Set<Op["t"]>(["load", "loadEntries", "list", "changes", "sizes", "consistent", "settle", "scan", "delete", "deleteMany", "compact", "rollback", "discard"]);

/**
 * Puts held in one turn before what is held commits anyway (still one fsync per 2,000 writes). Measured on a 60,000-
 * frame stream (bench/wal-actor.ts, interleaved runs): 1,000 / 2,000 / 3,000 / unbounded gave ~82k / ~86k / ~78k /
 * ~64k frames/s.
 */
export const MAX_HELD_PUTS = 2000;

export class GroupCommit {
  /** Tiers whose triggered flushes wait for the end of this turn. */
  readonly #held = new Set<TierCore<unknown>>();
  /** Puts applied since what is held last committed. */
  #puts = 0;
  /** Messages taken in this turn, and whether its end is scheduled. */
  #messages = 0;
  #endScheduled = false;
  /**
   * The last message taken was a part of a main-thread turn whose rest follows (protocol.ts MORE): the turn's parts
   * commit as the one message they would have been, so neither the turn's end nor the bound commits until the part
   * without it (the turn's own send, always posted) is taken.
   */
  #more = false;

  /** `commitJoined`: commits the store's joined explicit flushes (flush-group.ts), which the bound bounds too. */
  constructor(private readonly commitJoined: () => void = () => undefined) {}

  /** Call before applying `op` to `core`: holds the tier's triggered flushes to the turn's end, or runs a barrier. */
  beforeOp(op: Op["t"], core: TierCore<unknown>): void {
    if (!this.#held.has(core)) {
      core.deferTriggeredFlushes = true;
      this.#scheduleEnd();
      this.#held.add(core);
    }
    if (BARRIERS.has(op)) this.#commitHeld();
  }

  /**
   * Call after an op wrote `n` values (puts, appended entries): past MAX_HELD_PUTS held in this turn, what is held
   * commits now, unless the op is `open` (a unit of writes, KvStorageTier.saveMany, goes on in the next op): a unit
   * never straddles two transactions, so the bound is passed by at most one unit.
   */
  afterPuts(n: number, open = false): void {
    this.#puts += n;
    if (this.#puts >= MAX_HELD_PUTS && !open && !this.#more) this.#commitHeld();
  }

  /**
   * Call when a message is taken: how many this turn has taken (1: the first, and nothing says more are queued; a
   * second one shows the port holds a backlog, whose messages this turn takes before its end). `more`: the message
   * is a part of a main-thread turn whose rest follows (protocol.ts MORE); what is held waits for that rest.
   */
  messageTaken(more = false): number {
    // A turn whose parts ended with a message of no puts (every write went early) left the bound unchecked: checked
    // here, between that turn and the next one, so a backlog of such turns still commits every ~MAX_HELD_PUTS.
    if (!this.#more && this.#puts >= MAX_HELD_PUTS) this.#commitHeld();
    this.#more = more;
    this.#scheduleEnd();
    return ++this.#messages;
  }

  #scheduleEnd(): void {
    if (this.#endScheduled) return;
    this.#endScheduled = true;
    setImmediate(() => this.#endTurn());
  }

  /** Runs every held tier's triggered flush; the tiers stay held for the rest of the turn. */
  #commitHeld(): void {
    this.#puts = 0;
    for (const held of this.#held) held.flushDeferred(); // joins the flush group where the store has one
    this.commitJoined();
  }

  /** The run over the queued messages ended: what it holds commits, joined flushes and triggered ones as one. */
  #endTurn(): void {
    this.#endScheduled = false;
    this.#messages = 0;
    // A part's run ended before the rest of its main-thread turn arrived: hold on (the rest's message is the first
    // of a run again, as the whole turn's one message would have been).
    if (this.#more) return;
    const cores = [...this.#held];
    this.#held.clear();
    this.#puts = 0;
    for (const core of cores) {
      core.deferTriggeredFlushes = false;
      core.flushDeferred();
    }
    this.commitJoined();
  }
}
