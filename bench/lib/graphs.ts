/** Graph fixtures for the suites that persist a live graph (attach, restore, compaction). */
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { createGraph, type GraphCheckpointRecord, type ReactiveGraph } from "../../src/index.js";
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
