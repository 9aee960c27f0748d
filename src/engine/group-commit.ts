/**
 * Group commit for a store actor: the triggered flushes (sync-through, compactEvery) of every tier an op touched
 * wait until the worker's event-loop turn ends, i.e. until every message already waiting on the port was applied,
 * so a backlog of N messages of sync-through writes commits in one transaction (one fsync) instead of N. Costs
 * nothing when messages arrive one at a time. An op that observes the backend or ends a transaction first commits
 * what is held, in every tier, so it sees exactly what it would inline.
 * The tier core only records that a triggered flush is waiting (`deferTriggeredFlushes`); when it runs is decided here,
 * except that the core runs it early rather than let a newer write displace a value it owes (core.ts `displacing`).
 */
import type { TierCore } from "../tier/core.js";
import type { Op } from "./protocol.js";

/** Ops that observe the backend or end a transaction: writes queued before them must be written first. */
const BARRIERS = new Set<Op["t"]>(["load", "loadEntries", "list", "changes", "scan", "delete", "deleteMany", "compact", "rollback"]);

export class GroupCommit {
  /** Tiers whose triggered flushes wait for the end of this turn. */
  readonly #held = new Set<TierCore<unknown>>();

  /** Call before applying `op` to `core`: holds the tier's triggered flushes to the turn's end, or runs a barrier. */
  beforeOp(op: Op["t"], core: TierCore<unknown>): void {
    if (!this.#held.has(core)) {
      core.deferTriggeredFlushes = true;
      if (this.#held.size === 0) setImmediate(() => this.#endTurn());
      this.#held.add(core);
    }
    if (BARRIERS.has(op)) for (const held of this.#held) held.flushDeferred();
  }

  #endTurn(): void {
    const cores = [...this.#held];
    this.#held.clear();
    for (const core of cores) {
      core.deferTriggeredFlushes = false;
      core.flushDeferred();
    }
  }
}
