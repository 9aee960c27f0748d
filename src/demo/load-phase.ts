/**
 * Phase 1: the server graph under load through the engine, with background compactions in the store's actor
 * and the live progress line. Returns the numbers the summary reports.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { openStorageEngine, type StoreStats } from "../engine/index.js";
import { StorageError } from "../errors.js";
import type { ReactiveGraph } from "../graph/types.js";
import { attachSnapshotStorage } from "../persistence/attach.js";
import { compactGraphInEngine, type CompactionResult } from "../persistence/compaction.js";
import { LoadLoop, backlogLimit, graphOnlyLoopP99, percentile } from "./load.js";
import type { DemoOptions } from "./options.js";
import { startProgress } from "./progress.js";
import { mulberry32 } from "../base/prng.js";
import { DEMO_GRAPH_NAME, buildServerGraph } from "./server-graph.js";
import { demoStore, enginePair, storeSizeBytes } from "./store.js";

const FLUSH_EVERY_MS = 100;

export interface LoadPhaseResult {
  graphNodes: number;
  changes: number;
  waves: number;
  elapsedMs: number;
  durableSeq: number;
  framesWritten: number;
  bytesWritten: number;
  storeBytes: number;
  compactions: number;
  foldedFrames: number;
  deletedFrames: number;
  /** The actor's flush (one backend transaction) durations, from engine.stats(). */
  flushP50Ms: number | undefined;
  flushP99Ms: number | undefined;
  /** `handle.flush()` call → durable, as the application sees it (includes queueing behind compactions). */
  durableP50Ms: number | undefined;
  durableP99Ms: number | undefined;
  loopP99Ms: number;
  /** The same loop without storage (see graphOnlyLoopP99). */
  graphOnlyLoopP99Ms: number;
}

/**
 * What only tests set, no option of the demo (task 345): the engine's maxPendingBytes (a small one: a store behind the
 * writer, which attach reports as backpressure), a look at each error attach reports, and the server graph once the
 * phase's last flush made it durable at `seq`.
 */
export interface LoadPhaseInternals {
  readonly maxPendingBytes?: number;
  readonly heard?: (err: Error) => void;
  readonly durable?: (graph: ReactiveGraph, seq: number) => void;
}

export async function runLoadPhase(opts: DemoOptions, tty: boolean, internals: LoadPhaseInternals = {}): Promise<LoadPhaseResult> {
  const calibrationMs = opts.seconds >= 5 ? 1000 : 500;
  const graphOnlyLoopP99Ms = await graphOnlyLoopP99(buildServerGraph(opts.nodes), mulberry32(opts.seed), opts.batch, 200, calibrationMs);
  const errors: Error[] = [];
  const { maxPendingBytes } = internals;
  const engine = openStorageEngine({
    threads: 1,
    onError: (err) => errors.push(err),
    ...(maxPendingBytes !== undefined ? { maxPendingBytes } : {}),
  });
  // A failure closes the engine too (once more after its own close: no harm).
  try {
    const store = demoStore(opts.dataDir);
    const server = buildServerGraph(opts.nodes);
    const handle = attachSnapshotStorage(server.graph, [enginePair(engine, store)], {
      compactEvery: Number.POSITIVE_INFINITY, // baselines come from background compaction instead
      // A store behind the writer (a loaded machine) is told once per spell as "backpressure": nothing is lost (the
      // waves wait in the outbox, the loop paces on its backlog), so it is no failure of the demo.
      onError: (err) => {
        internals.heard?.(err);
        if (!(err instanceof StorageError && err.code === "backpressure")) errors.push(err);
      },
    });
    await handle.flush(); // the attach baseline

    // Compact once this many frames accumulated (what the engine's autoCompact option does by itself; done here
    // explicitly so the demo can count the compactions and what they reclaimed). A compaction holds the actor's
    // mailbox while it folds, so many small ones keep flush latency lower than a few big ones.
    const compactEveryFrames = Math.max(10_000, opts.nodes * 4);
    const compaction = { count: 0, folded: 0, deleted: 0, fromSeq: handle.seq, inFlight: undefined as Promise<void> | undefined };
    const compact = (): Promise<void> => {
      compaction.fromSeq = handle.seq;
      const p = compactGraphInEngine(engine, store, DEMO_GRAPH_NAME).then(
        (r) => {
          const result = r as CompactionResult;
          compaction.count++;
          compaction.folded += result.foldedFrames;
          compaction.deleted += result.deletedFrames;
        },
        (err: Error) => {
          errors.push(err);
        },
      );
      compaction.inFlight = p.finally(() => (compaction.inFlight = undefined));
      return compaction.inFlight;
    };

    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const loop = new LoadLoop({
      server,
      handle,
      random: mulberry32(opts.seed),
      batch: opts.batch,
      durationMs: opts.seconds * 1000,
      flushEveryMs: FLUSH_EVERY_MS,
      maxBacklogFrames: backlogLimit(opts.nodes),
      between: () => {
        if (compaction.inFlight === undefined && handle.seq - compaction.fromSeq >= compactEveryFrames) void compact();
        return undefined;
      },
    });
    const storeStats = async (): Promise<StoreStats | undefined> => (await engine.stats())[0];
    const progress = startProgress(opts.seconds * 1000, tty, async () => {
      const s = await storeStats();
      return {
        elapsedMs: loop.stats.elapsedMs,
        changes: loop.stats.changes,
        durableSeq: loop.stats.durableSeq,
        flushP99Ms: s?.flushLatencyP99Ms,
        loopP99Ms: loopDelay.percentile(99) / 1e6,
        compactions: compaction.count,
      };
    });
    try {
      await loop.run();
    } finally {
      await progress.stop();
      loopDelay.disable();
    }
    const durableSeq = await handle.flush();
    internals.durable?.(server.graph, durableSeq);
    await handle.dispose();
    await compaction.inFlight;
    await compact(); // leave the store compact: the crash child restores from it
    const stats = await storeStats();
    await engine.close();
    if (errors.length > 0) throw errors[0];
    return {
      graphNodes: server.graph.paths().length,
      changes: loop.stats.changes,
      waves: loop.stats.waves,
      elapsedMs: loop.stats.elapsedMs,
      durableSeq,
      framesWritten: stats?.frames ?? 0,
      bytesWritten: stats?.bytesWritten ?? 0,
      storeBytes: storeSizeBytes(opts.dataDir),
      compactions: compaction.count,
      foldedFrames: compaction.folded,
      deletedFrames: compaction.deleted,
      flushP50Ms: stats?.flushLatencyP50Ms,
      flushP99Ms: stats?.flushLatencyP99Ms,
      durableP50Ms: percentile(loop.stats.flushMs, 50),
      durableP99Ms: percentile(loop.stats.flushMs, 99),
      loopP99Ms: loopDelay.percentile(99) / 1e6,
      graphOnlyLoopP99Ms,
    };
  } catch (err) {
    await engine.close().catch(() => undefined);
    throw err;
  }
}
