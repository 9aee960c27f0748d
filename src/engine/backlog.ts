/**
 * Backpressure of one engine store, on the main thread (issue 11 item 1): the bytes of writes posted to the actor
 * and not yet committed or dropped there. The main thread counts what it posts (plain numbers, no per-save
 * allocation); the actor acknowledges what it settled in the shared counters. Only when the count passes the
 * bound are the acknowledgements read, so the common path costs two additions.
 */
import { StorageError } from "../errors.js";
import type { ActorCounters } from "./actor-counters.js";
import { UNKNOWN_ENTRY_BYTES } from "../tier/core.js";
import { drainedFor, fits, MIN_VALUE_ESTIMATE } from "../tier/weights.js";

/** How often a waiting drained() looks at the actor's acknowledgements. */
const DRAIN_POLL_MS = 5;

export class StoreBacklog {
  private postedBytes = 0;
  private postedEntries = 0;
  /** Acknowledged bytes last read from the counters (refreshed only when the count passes the bound). */
  private settledSeen = 0;
  /** Each waiter's `need`: the weight of the write refused last when it called drained(). */
  private waiters: Array<{ need: number; resolve(): void; reject(e: Error): void }> = [];
  /** The weight of the write refused last (0 once a write was accepted since): drained() waits until it fits. */
  private refusedWeight = 0;
  private poll: ReturnType<typeof setInterval> | undefined;
  /** Weight of a value the worker encodes: the store's average committed write, refreshed with the acknowledgements. */
  entryEstimate = UNKNOWN_ENTRY_BYTES;

  constructor(
    private readonly counters: ActorCounters,
    readonly maxPendingBytes: number | undefined,
    private readonly store: string,
  ) {}

  /** Counts a posted write (`bytes`: its exact or estimated size). */
  add(bytes: number, entries: number): void {
    this.postedBytes += bytes;
    this.postedEntries += entries;
  }

  /** Takes back writes that were never sent (a message the port refused). */
  unpost(bytes: number, entries: number): void {
    this.postedBytes -= bytes;
    this.postedEntries -= entries;
  }

  /**
   * Throws StorageError("backpressure") unless a write weighing `weight` (replacing a posted one weighing `freed`)
   * fits beside the pending bytes (`fits` in weights.ts, as inline tiers): the write is NOT accepted.
   */
  assertRoom(tier: string, weight: number, freed = 0): void {
    const max = this.maxPendingBytes;
    // What is known pending is an upper bound (acknowledgements only grow): read them only when it does not fit.
    if (fits(this.postedBytes - this.settledSeen, weight, freed, max) || fits(this.pendingBytes, weight, freed, max)) {
      this.refusedWeight = 0;
      return;
    }
    this.refusedWeight = weight;
    const pending = this.pendingBytes;
    throw new StorageError(
      "backpressure",
      `store ${this.store} has ${pending} bytes pending (maxPendingBytes ${max}): the write to tier "${tier}" was not accepted; await drained() and write again`,
      { store: this.store, tier, pendingBytes: pending, maxPendingBytes: max },
    );
  }

  /** Bytes posted and not yet committed or dropped by the actor (read now). */
  get pendingBytes(): number {
    this.refresh();
    return this.postedBytes - this.settledSeen;
  }

  get pendingEntries(): number {
    return this.postedEntries - this.counters.get("settledEntries");
  }

  private refresh(): void {
    this.settledSeen = this.counters.get("settledBytes");
    const writes = this.counters.get("writes");
    if (writes > 0) this.entryEstimate = Math.max(MIN_VALUE_ESTIMATE, Math.ceil(this.counters.get("bytesWritten") / writes));
  }

  /**
   * Resolves once the write last refused would fit (`drainedFor`: pending at most half the bound and the bound less
   * that write; one heavier than the bound: nothing pending), at once when it would; rejects if the actor died.
   */
  drained(): Promise<void> {
    const need = this.refusedWeight;
    if (drainedFor(this.pendingBytes, need, this.maxPendingBytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ need, resolve, reject });
      // Only while someone waits: the actor's acknowledgements are polled, nothing is sent to it.
      this.poll ??= setInterval(() => this.wakeDrained(), DRAIN_POLL_MS);
    });
  }

  private wakeDrained(): void {
    const pending = this.pendingBytes;
    const waiting = this.waiters.filter((w) => !drainedFor(pending, w.need, this.maxPendingBytes));
    const woken = this.waiters.filter((w) => !waiting.includes(w));
    this.waiters = waiting;
    if (waiting.length === 0 && this.poll !== undefined) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
    for (const w of woken) w.resolve();
  }

  /**
   * The actor is gone (`err` says why): its waiters reject with it, and what it never settled stops counting
   * (those writes were lost or are sent again, counted again, to the actor that replaces it).
   */
  fail(err: Error): void {
    this.refresh();
    this.postedBytes = this.settledSeen;
    this.postedEntries = this.counters.get("settledEntries");
    this.settleWaiters(err);
  }

  private settleWaiters(err: Error | undefined): void {
    if (this.poll !== undefined) clearInterval(this.poll);
    this.poll = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }
}
