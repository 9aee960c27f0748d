/** Graph fixtures for the suites that persist a live graph (attach, restore, compaction). */
import { setImmediate as nextTurn } from "node:timers/promises";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, createGraph, type AttachPair, type GraphCheckpointRecord, type ReactiveGraph } from "../../src/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { makeKeys, makeValue, type NodeValue } from "./workload.js";

/** A graph of `n` state nodes holding small records; `paths` in creation order. */
export function buildGraph(name: string, n: number): { graph: ReactiveGraph; paths: string[] } {
  const graph = createGraph(name);
  const paths = makeKeys(n, "n").map((key, i) => graph.state(key, makeValue(i)));
  return { graph, paths };
}

/** Engine tiers for a graph: snapshot under the graph name, WAL kv whose codec seals frames in the worker. */
export function engineGraphTiers(
  engine: StorageEngine,
  store: StoreSpec,
  graphName: string,
): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } {
  return {
    snapshot: engine.snapshot<GraphCheckpointRecord>(store, { name: graphName }),
    wal: engine.kv<WALFrame>(store, { name: `${graphName}-wal`, codec: walFrameCodec }),
  };
}

/**
 * `size` distinct values; writing `values[(i + round) % size]` to node `i` in round `round` always changes it
 * (an equal write would be a `resolved` signal and persist nothing).
 */
export function rotatingValues(size: number): NodeValue[] {
  return Array.from({ length: size }, (_, i) => makeValue(1_000_000 + i));
}

/**
 * Tiers that accept and drop everything (the WAL one reports the sealing codec, so attach leaves checksums to
 * it): attach's own main-thread work, without any storage hand-off.
 */
export function discardingTiers(): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } {
  const base = (codecName: string) => ({
    name: "discard",
    debounceMs: undefined,
    compactEvery: undefined,
    codecName,
    flush: () => Promise.resolve(),
    rollback: () => undefined,
    compact: () => Promise.resolve(),
    close: () => Promise.resolve(),
  });
  return {
    snapshot: { ...base("json"), save: () => undefined, load: () => Promise.resolve(undefined) },
    wal: {
      ...base(walFrameCodec.name),
      save: () => undefined,
      load: () => Promise.resolve(undefined),
      delete: () => Promise.resolve(),
      list: () => Promise.resolve([]),
      listByPrefix: async function* () {},
    },
  };
}

/**
 * A graph of `chunk` state nodes attached to `tiers` (the attach baseline only: the WAL path is measured, not periodic
 * full snapshots), streamed one `graph.set` per wave, `chunk` waves per tick, then flushed: suite 2's and suite 6's
 * graph + attach contenders and bench/wal-actor.ts.
 */
export function attachedStream(
  graphName: string,
  tiers: AttachPair,
  chunk: number,
): { ready: Promise<unknown>; stream(frames: number): Promise<void>; close(): Promise<void> } {
  const { graph, paths } = buildGraph(graphName, chunk);
  const values = rotatingValues(chunk);
  const handle = attachSnapshotStorage(graph, [tiers], { compactEvery: Number.POSITIVE_INFINITY });
  let round = 0;
  return {
    ready: handle.flush(),
    async stream(frames) {
      for (let c = 0; c < frames / chunk; c++) {
        round++;
        for (let j = 0; j < chunk; j++) graph.set(paths[j]!, values[(j + round) % chunk]!);
        await nextTurn();
      }
      await handle.flush();
    },
    async close() {
      await handle.dispose();
      await tiers.snapshot.close();
      await tiers.wal?.close();
    },
  };
}
