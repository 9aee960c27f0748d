/**
 * A job in a store's actor (a compaction, a background fold) makes every tier's writes durable first. It did so with
 * each tier's flush(), which took the report of a WAL frame refused for good (a custom WAL codec) away from the
 * graph that wrote it: that graph's handle.flush() then acknowledged the refused frame, and restore lacked the value
 * (review). The job now writes the tiers without taking their refusals.
 */
import { expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage, compactGraphInEngine, type GraphCheckpointRecord } from "../../src/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { buildGraph, tempDir } from "../graph-compaction/fixtures.js";
import { outcome, refusingBadFrames } from "../support/refusals.js";


it("compacting another graph of the store leaves the refusal to the graph whose frame was refused", async () => {
  const tmp = tempDir("job-keeps-refusal");
  const engine = openStorageEngine({ threads: 1, onError: () => undefined });
  try {
    const store = { kind: "sqlite" as const, path: tmp.path("s.db") };
    const snapshot = engine.snapshot<GraphCheckpointRecord>(store);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal: engine.kv<WALFrame>(store, { codec: refusingBadFrames }) }], {
      onError: () => undefined,
    });
    expect(await handle.flush()).toBe(1);
    const other = createGraph("other");
    other.state("x", 0);
    const otherHandle = attachSnapshotStorage(other, [{ snapshot, wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) }], {
      compactEvery: Number.POSITIVE_INFINITY,
    });
    other.set("x", 1);
    await otherHandle.flush();
    graph.set("c", "bad"); // the graph's frame 2, refused for good by its WAL codec
    await new Promise((r) => setTimeout(r, 50)); // the refusal reaches the actor
    expect(await outcome(compactGraphInEngine(engine, store, "other"))).toBe("resolved");
    expect(await outcome(handle.flush())).toBe("rejected write-refused");
    await handle.dispose().catch(() => undefined);
    await otherHandle.dispose();
  } finally {
    await engine.close().catch(() => undefined);
    tmp.remove();
  }
});
