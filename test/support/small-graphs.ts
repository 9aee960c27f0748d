/** Graphs for the tests of writers sharing tiers: one state node `v`, and two such graphs attached to one pair. */
import { attachSnapshotStorage, type GraphCheckpointRecord, type StorageHandle } from "../../src/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import type { WALFrame } from "../../src/wal/index.js";

export function smallGraph(name: string): ReactiveGraph {
  const g = createGraph(name);
  g.state("v", 0);
  return g;
}

/** Graphs "a" and "b" attached to the same tiers, each with v = 1 acknowledged. */
export async function twoGraphsAt1(
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>,
  wal: KvStorageTier<WALFrame>,
): Promise<{ a: ReactiveGraph; b: ReactiveGraph; ha: StorageHandle; hb: StorageHandle }> {
  const a = smallGraph("a");
  const b = smallGraph("b");
  const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
  const hb = attachSnapshotStorage(b, [{ snapshot, wal }], { onError: () => {} });
  a.set("v", 1);
  b.set("v", 1);
  await Promise.all([ha.flush(), hb.flush()]);
  return { a, b, ha, hb };
}
