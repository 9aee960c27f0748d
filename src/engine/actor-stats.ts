/**
 * A store actor's bookkeeping: what its tiers report (writes settled, flush latency and attempts, committed bytes,
 * tiers that began or stopped failing) goes into the counters the main thread reads (actor-counters.ts) and, for
 * a tier that recovered, an event. The actor wires each tier core to it once, when the tier opens.
 */
import type { BatchOp } from "../backend/types.js";
import type { TierCore } from "../tier/core.js";
import { ActorCounters } from "./actor-counters.js";
import { LatencyWindow } from "./latency.js";

/**
 * The counters of every actor hosted on this thread: long synchronous work in one of them blocks them all, so its
 * progress is every one's heartbeat (the watchdog must not terminate a busy thread for a store waiting behind it).
 */
const onThisThread = new Set<ActorCounters>();

export class ActorStats {
  /** Shared with the main thread, which reads stats and backpressure from them without a message. */
  readonly #counters: ActorCounters;
  readonly #latency = new LatencyWindow();
  readonly #recovered: (tier: string | undefined) => void;

  constructor(counters: SharedArrayBuffer | undefined, recovered: (tier: string | undefined) => void) {
    this.#counters = new ActorCounters(counters);
    this.#recovered = recovered;
    onThisThread.add(this.#counters);
  }

  /** The actor ended: its counters leave the thread's heartbeat. */
  retire(): void {
    onThisThread.delete(this.#counters);
  }

  /** Makes `core` report here; `afterCommit` also sees each committed batch (the actor's commit watchers). */
  observe(core: TierCore<unknown>, tier: string | undefined, afterCommit: (batch: readonly BatchOp[]) => void): void {
    core.settleObserver = (bytes, entries) => this.settled(bytes, entries);
    core.flushObserver = (ms, joined) => {
      this.#flushed(ms);
      if (!joined) this.committedGroup(); // committed alone: a transaction of its own
    };
    core.attemptObserver = (ok, failingChanged) => this.#attempted(ok, failingChanged, tier);
    core.writeObserver = (batch) => {
      this.progressed(); // a commit is progress, however long the run of messages it is part of
      let bytes = 0;
      for (const op of batch) if (op.op === "put") bytes += op.value.byteLength;
      this.#counters.add("bytesWritten", bytes);
      this.#counters.add("writes", batch.length);
      afterCommit(batch);
    };
  }

  /** Posted writes (their weight as the main thread counted it) committed or dropped: acknowledges backpressure. */
  settled(bytes: number, entries: number): void {
    this.#counters.add("settledBytes", bytes);
    this.#counters.add("settledEntries", entries);
  }

  /** Long synchronous work moved on (a file written): the heartbeat of every actor on this thread, beside the event loop's timer. */
  progressed(): void {
    for (const counters of onThisThread) counters.add("heartbeat", 1);
  }

  /** A backend transaction of flushes committed (a flush alone, or a group of joined flushes: flush-group.ts). */
  committedGroup(): void {
    this.#counters.add("commits", 1);
  }

  /** An error the actor reported to the main thread. */
  errorReported(): void {
    this.#counters.add("errors", 1);
  }

  #flushed(ms: number): void {
    this.#latency.record(ms);
    const n = this.#counters.get("flushes") + 1;
    this.#counters.set("flushes", n);
    // Percentiles select from a copy of the window: refreshed on every flush while it is small, then every 16th.
    if (n < 64 || n % 16 === 0) {
      const [p50, p99] = this.#latency.percentiles([50, 99]);
      this.#counters.set("flushP50Us", (p50 ?? 0) * 1000);
      this.#counters.set("flushP99Us", (p99 ?? 0) * 1000);
    }
  }

  #attempted(ok: boolean, failingChanged: boolean, tier: string | undefined): void {
    this.#counters.add("flushAttempts", 1);
    if (!ok) this.#counters.add("failedFlushes", 1);
    if (!failingChanged) return;
    this.#counters.add("failingTiers", ok ? -1 : 1);
    if (ok) this.#recovered(tier);
  }
}
