/**
 * Backpressure of one engine store, on the main thread (issue 11 item 1): the bytes of writes posted to the actor
 * and not yet committed or dropped there. The main thread counts what it posts (plain numbers, no per-save
 * allocation); the actor acknowledges what it settled in the shared counters. Only when the count passes the
 * bound are the acknowledgements read, so the common path costs two additions.
 */
import { StorageError } from "../errors.js";
import type { ActorCounters } from "./actor-counters.js";
import { UNKNOWN_ENTRY_BYTES } from "../tier/core.js";
import { MIN_VALUE_ESTIMATE } from "../tier/weights.js";
import { RoomQueue } from "../tier/room.js";

/** How often a waiting drained() looks at the actor's acknowledgements (tests may set another: EngineTestInternals). */
const DRAIN_POLL_MS = 5;

export class StoreBacklog {
  private postedBytes = 0;
  /** Weight of deletes sent and not yet answered (they travel as requests, not weighed writes): held here alone. */
  private requestBytes = 0;
  private postedEntries = 0;
  /** Acknowledged bytes last read from the counters (refreshed only when the count passes the bound). */
  private settledSeen = 0;
  /** Each waiter's `need`: the weight it passed to drained(), else the write refused last when it called. */
  private waiters: Array<{ need: number; resolve(): void; reject(e: Error): void }> = [];
  /** Refused writes waiting for room, first come first served (src/tier/room.ts, as inline tiers). */
  private readonly room: RoomQueue;
  private poll: ReturnType<typeof setInterval> | undefined;
  /** The actor's backend writes no more (its final error, e.g. a lost lease): writes throw it, drained() resolves. */
  private endedBy: Error | undefined;
  /** Weight of a value the worker encodes: the store's average committed write, refreshed with the acknowledgements. */
  entryEstimate = UNKNOWN_ENTRY_BYTES;

  constructor(
    private readonly counters: ActorCounters,
    readonly maxPendingBytes: number | undefined,
    private readonly store: string,
    private readonly pollMs = DRAIN_POLL_MS,
  ) {
    this.room = new RoomQueue(() => this.maxPendingBytes);
  }

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
   * fits beside the pending bytes and the writes refused before it (room.ts, as inline tiers): the write is NOT
   * accepted, and its weight is in the error's details for drained(weight).
   */
  assertRoom(tier: string, weight: number, freed = 0): void {
    // What is known pending is an upper bound (acknowledgements only grow): read them only when it does not fit.
    // Only the exact figure may refuse, reserve, or go in front of a reservation (room.ts take).
    if (this.room.take(this.postedBytes - this.settledSeen + this.requestBytes, weight, freed)) return;
    const pending = this.pendingBytes;
    if (this.room.admit(pending, weight, freed)) return;
    const max = this.maxPendingBytes;
    throw new StorageError(
      "backpressure",
      `store ${this.store} has ${pending} bytes pending (maxPendingBytes ${max}): the write to tier "${tier}" (weight ${weight}) was not accepted; await drained(weight) and write again`,
      { store: this.store, tier, pendingBytes: pending, maxPendingBytes: max, weight },
    );
  }

  /** Bytes posted and not yet committed or dropped by the actor, and deletes not yet answered (read now). */
  get pendingBytes(): number {
    this.refresh();
    return this.postedBytes - this.settledSeen + this.requestBytes;
  }

  /** Holds a request's `weight` (a delete) until its answer settles `done`: un-awaited deletes queued without limit. */
  holdUntil<R>(weight: number, done: Promise<R>): Promise<R> {
    this.requestBytes += weight;
    const release = (): void => {
      this.requestBytes -= weight;
    };
    done.then(release, release);
    return done;
  }

  /** Someone waits in drained(): the watchdog counts it as an answer due (connection.ts stalled). */
  get waiting(): boolean {
    return this.waiters.length > 0;
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
   * Resolves once a write weighing `weight` (default: the write refused last on this store) would be taken (room.ts),
   * at once when it would; with no write refused, once at most half the bound is pending; rejects if the actor died.
   */
  drained(weight?: number): Promise<void> {
    const need = weight ?? this.room.refusedWeight;
    if (this.endedBy !== undefined || this.room.ready(this.pendingBytes, need)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ need, resolve, reject });
      // Only while someone waits: the actor's acknowledgements are polled, nothing is sent to it.
      this.poll ??= setInterval(() => this.wakeDrained(), this.pollMs);
    });
  }

  private wakeDrained(): void {
    const pending = this.pendingBytes;
    const waiting = this.waiters.filter((w) => !this.room.ready(pending, w.need));
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
    this.endedBy = undefined; // a new actor opens the store again
    this.refresh();
    this.postedBytes = this.settledSeen;
    this.postedEntries = this.counters.get("settledEntries");
    this.room.clear();
    this.settleWaiters(err);
  }

  /** Set once the actor's backend writes no more (`err`: its final error): see `ended`. */
  get ended(): Error | undefined {
    return this.endedBy;
  }

  /**
   * The actor's backend writes no more (a lost lease: `err`, its not-owner): writes throw it from now on, and
   * drained() waiters resolve (nothing will drain; their next write throws it), as an inline tier's. The first loss
   * heard stays (an error event and several tiers' close answers each carry it): writes refused since were refused
   * with it, and a later one must not change their wording (until fail(): a new actor opens the store again).
   */
  end(err: Error): void {
    this.endedBy ??= err;
    this.room.clear();
    this.settleWaiters(undefined);
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
