/**
 * Counters a store actor shares with the main thread through a SharedArrayBuffer: the worker writes them as it
 * works, the main thread reads them directly, so engine.stats() and backpressure never queue a message behind a
 * backlog of writes (issue 11 item 2). Each field has one writer (the actor) except where noted; 64-bit slots
 * accessed with Atomics, so a read never sees a torn value.
 */

/** Slot of each counter in the shared array. Append new fields at the end (the layout is internal, not persisted). */
export const Counter = {
  /** Bytes (exact or estimated, as the main thread weighed them) of accepted writes committed or dropped. */
  settledBytes: 0,
  /** Writes the main thread posted that were committed or dropped (refused, rolled back, superseded and flushed). */
  settledEntries: 1,
  /** Successful flushes (backend transactions). */
  flushes: 2,
  /** Flushes that failed (each attempt, automatic retries included). */
  failedFlushes: 3,
  /** Flush attempts, successful or not (a full disk shows as attempts growing slowly: retries back off). */
  flushAttempts: 4,
  /** Encoded bytes committed. */
  bytesWritten: 5,
  /** Backend writes committed (one per WAL frame / record / segment). */
  writes: 6,
  /** Tiers whose writes are failing now (entered failing, not yet recovered). */
  failingTiers: 7,
  /** Errors the actor reported (onError events). */
  errors: 8,
  /** Flush latency percentiles of the recent window, in microseconds (0: none yet). */
  flushP50Us: 9,
  flushP99Us: 10,
  /** Bumped by the actor while its event loop turns (the main thread's watchdog reads it). */
  heartbeat: 11,
} as const;

export type CounterName = keyof typeof Counter;

const SLOTS = 16;

/** Both ends wrap the same SharedArrayBuffer (it crosses to the worker in the actor's options). */
export class ActorCounters {
  readonly buffer: SharedArrayBuffer;
  private readonly slots: BigInt64Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 8)) {
    this.buffer = buffer;
    this.slots = new BigInt64Array(buffer);
  }

  get(name: CounterName): number {
    return Number(Atomics.load(this.slots, Counter[name]));
  }

  add(name: CounterName, n: number): void {
    if (n !== 0) Atomics.add(this.slots, Counter[name], BigInt(Math.round(n)));
  }

  set(name: CounterName, n: number): void {
    Atomics.store(this.slots, Counter[name], BigInt(Math.round(n)));
  }
}
