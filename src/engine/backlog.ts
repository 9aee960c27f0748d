/**
 * Backpressure of one engine store, on the main thread (issue 11 item 1): the bytes of writes posted to the actor
 * and not yet committed or dropped there. The main thread counts what it posts (plain numbers, no per-save
 * allocation); the actor acknowledges what it settled in the shared counters. Only when the count passes the
 * bound are the acknowledgements read, so the common path costs two additions.
 */
import { StorageError } from "../errors.js";
import type { ActorCounters } from "./actor-counters.js";
import { UNKNOWN_ENTRY_BYTES } from "../tier/core.js";

/** How often a waiting drained() looks at the actor's acknowledgements. */
const DRAIN_POLL_MS = 5;

export class StoreBacklog {
  private postedBytes = 0;
  private postedEntries = 0;
  /** Acknowledged bytes last read from the counters (refreshed only when the count passes the bound). */
  private settledSeen = 0;
  private waiters: Array<{ resolve(): void; reject(e: Error): void }> = [];
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

  /** Throws StorageError("backpressure") when the pending bytes exceed the bound: the write is NOT accepted. */
  assertRoom(tier: string): void {
    const max = this.maxPendingBytes;
    if (max === undefined || this.postedBytes - this.settledSeen <= max) return;
    const pending = this.pendingBytes;
    if (pending > max) {
      throw new StorageError(
        "backpressure",
        `store ${this.store} has ${pending} bytes pending (maxPendingBytes ${max}): the write to tier "${tier}" was not accepted; await drained() and write again`,
        { store: this.store, tier, pendingBytes: pending, maxPendingBytes: max },
      );
    }
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
    if (writes > 0) this.entryEstimate = Math.max(1, Math.ceil(this.counters.get("bytesWritten") / writes));
  }

  private isDrained(): boolean {
    return this.maxPendingBytes === undefined || this.pendingBytes <= this.maxPendingBytes / 2;
  }

  /** Resolves once the pending bytes fell to half the bound (at once when they are); rejects if the actor died. */
  drained(): Promise<void> {
    if (this.isDrained()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      // Only while someone waits: the actor's acknowledgements are polled, nothing is sent to it.
      this.poll ??= setInterval(() => {
        if (this.isDrained()) this.settleWaiters(undefined);
      }, DRAIN_POLL_MS);
    });
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
