/**
 * The load loop: one batch of session updates per tick (one wave each), a background flush every
 * `flushEveryMs` to learn the durable seq, and backpressure when too many frames are not yet durable (a server
 * must not buffer without bound when the disk is slower than its traffic).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as nextTick } from "node:timers/promises";
import type { StorageHandle } from "../persistence/storage-types.js";
import { applyUpdates, type ServerGraph } from "./server-graph.js";

export interface LoadLoopOptions {
  server: ServerGraph;
  handle: StorageHandle;
  random: () => number;
  /** Session updates per wave. */
  batch: number;
  /** Stop after this many ms (Infinity: until the process is killed). */
  durationMs: number;
  flushEveryMs: number;
  /** Frames assigned but not yet durable at which the writer waits for the flush in flight. */
  maxBacklogFrames: number;
  /** A flush started covering `seq`; its return value is handed to `onDurable` (the child digests the graph). */
  onFlushStart?(seq: number): string | undefined;
  /** The flush that started at `seq` is durable. */
  onDurable?(seq: number, mark: string | undefined): void | Promise<void>;
  /** Called between waves; a returned promise pauses the writer until it settles. */
  between?(): Promise<void> | undefined;
}

export interface LoadStats {
  /** Session writes. */
  changes: number;
  waves: number;
  /** Highest seq known durable. */
  durableSeq: number;
  startedAt: number;
  elapsedMs: number;
  /** Milliseconds from each `handle.flush()` call to its resolution (durable). */
  flushMs: number[];
}

export class LoadLoop {
  readonly stats: LoadStats = { changes: 0, waves: 0, durableSeq: 0, startedAt: 0, elapsedMs: 0, flushMs: [] };
  private inFlight: Promise<void> | undefined;
  private lastFlushAt = 0;
  private failure: unknown;

  constructor(private readonly opts: LoadLoopOptions) {}

  /** Runs until `durationMs` elapsed; rejects with the first flush failure. */
  async run(): Promise<LoadStats> {
    const { server, random, batch, durationMs, flushEveryMs, maxBacklogFrames, handle } = this.opts;
    const s = this.stats;
    s.startedAt = performance.now();
    this.lastFlushAt = s.startedAt;
    for (;;) {
      const now = performance.now();
      s.elapsedMs = now - s.startedAt;
      if (this.failure !== undefined) throw this.failure;
      if (s.elapsedMs >= durationMs) break;
      s.changes += applyUpdates(server, random, batch);
      s.waves++;
      if (this.inFlight === undefined && now - this.lastFlushAt >= flushEveryMs) this.startFlush(now);
      if (handle.seq - s.durableSeq > maxBacklogFrames) await (this.inFlight ?? this.startFlush(now));
      const pause = this.opts.between?.();
      if (pause) await pause;
      await nextTick(); // let I/O, timers and the proxies' coalesced messages run
    }
    await this.inFlight;
    return s;
  }

  private startFlush(now: number): Promise<void> {
    this.lastFlushAt = now;
    const seq = this.opts.handle.seq;
    const mark = this.opts.onFlushStart?.(seq);
    const p = this.opts.handle.flush().then(async (durable) => {
      this.stats.flushMs.push(performance.now() - now);
      this.stats.durableSeq = Math.max(this.stats.durableSeq, durable);
      await this.opts.onDurable?.(seq, mark);
    });
    this.inFlight = p;
    const clear = (): void => {
      if (this.inFlight === p) this.inFlight = undefined;
    };
    p.then(clear, (err: unknown) => {
      this.failure ??= err;
      clear();
    });
    return p;
  }
}

/**
 * Backlog (frames assigned, not yet durable) at which a writer waits: about a second of the actor's work. The
 * disk sets the sustainable rate; beyond it a server must slow down rather than buffer without bound.
 */
export function backlogLimit(nodes: number): number {
  return Math.max(2_000, nodes * 2);
}

/** The `p`th percentile (0–100) of `samples`, undefined when there are none. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Event-loop delay p99 (ms) of the same update loop on a graph without storage: the part of the delay that is
 * the graph's own work, for comparison with the persisted run. The first `warmupMs` (JIT) are not measured.
 */
export async function graphOnlyLoopP99(
  server: ServerGraph,
  random: () => number,
  batch: number,
  warmupMs: number,
  ms: number,
): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  const start = performance.now();
  let measuring = false;
  for (let now = start; now - start < warmupMs + ms; now = performance.now()) {
    if (!measuring && now - start >= warmupMs) {
      h.enable();
      measuring = true;
    }
    applyUpdates(server, random, batch);
    await nextTick();
  }
  h.disable();
  return h.percentile(99) / 1e6;
}
