/**
 * Counters one store actor shares with the main thread through a SharedArrayBuffer (one buffer per actor): the
 * main thread reads them without a message, so they answer even while the actor is busy or hung (stats,
 * backpressure acknowledgements, the watchdog's heartbeat). The actor is the only writer. Add a slot by naming it
 * in COUNTER and raising COUNTER_SLOTS. Slots are 64-bit (byte counts pass 2^31) and accessed with Atomics, so a
 * read never sees a torn value.
 */
export const COUNTER = {
  /** Bumped by the worker's event loop while it turns (see workers/store-actor.ts). */
  heartbeat: 0,
  /** Weight (bytes, as the main thread counted them) of posted writes the actor committed or dropped. */
  settledBytes: 1,
  /** Posted writes the actor committed or dropped (refused, rolled back, superseded and flushed). */
  settledEntries: 2,
  /** Successful flushes (a flush group's each count: see `commits`). */
  flushes: 3,
  /** Failed flush attempts (automatic retries included). */
  failedFlushes: 4,
  /** Flush attempts, successful or not. */
  flushAttempts: 5,
  /** Encoded bytes committed. */
  bytesWritten: 6,
  /** Backend writes committed (one per WAL frame / record / segment). */
  writes: 7,
  /** Tiers whose flushes are failing now. */
  failingTiers: 8,
  /** Errors the actor reported to the main thread. */
  errors: 9,
  /** Flush latency percentiles of the recent window, in microseconds (0: none yet). */
  flushP50Us: 10,
  flushP99Us: 11,
  /** The worker thread hosting the actor, written when its task starts (the watchdog terminates that thread). */
  threadId: 12,
  /** Backend transactions of successful flushes: flushes joined in a group (flush-group.ts) share one. */
  commits: 13,
} as const;

export const COUNTER_SLOTS = 16;

export type CounterName = keyof typeof COUNTER;

export class ActorCounters {
  private readonly cells: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(COUNTER_SLOTS * BigInt64Array.BYTES_PER_ELEMENT)) {
    this.cells = new BigInt64Array(buffer);
  }

  get(name: CounterName): number {
    return Number(Atomics.load(this.cells, COUNTER[name]));
  }

  set(name: CounterName, value: number): void {
    Atomics.store(this.cells, COUNTER[name], BigInt(Math.round(value)));
  }

  add(name: CounterName, delta: number): void {
    if (delta !== 0) Atomics.add(this.cells, COUNTER[name], BigInt(Math.round(delta)));
  }
}
