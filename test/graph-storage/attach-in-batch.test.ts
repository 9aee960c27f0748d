/**
 * Attach inside a batch (review s13c F2): the batch's snapshot holds its uncommitted writes, and a rollback emits
 * no wave, so the baseline attach took kept values and nodes the graph never had after the rollback (restore gave
 * back a node `ghost` the live graph did not have). Attach now refuses to start inside a batch (`Graph.inBatch`).
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

describe("attach inside a batch", () => {
  it("is refused with a TypeError and stores nothing; attached after the rollback, restore equals the live graph", async () => {
    const backend = memoryBackend();
    const pair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
    };
    const graph = createGraph("g");
    graph.state("a", 1);
    let attachError: unknown;
    expect(() =>
      graph.batch(() => {
        graph.set("a", 999);
        graph.state("ghost", "never");
        try {
          attachSnapshotStorage(graph, [pair]);
        } catch (err) {
          attachError = err;
        }
        throw new Error("rolled back");
      }),
    ).toThrow("rolled back");
    expect(attachError).toBeInstanceOf(TypeError);
    expect((attachError as Error).message).toMatch(/inside a batch/);
    expect(backend.list("")).toEqual([]);

    const handle = attachSnapshotStorage(graph, [pair]);
    graph.set("a", 2);
    await handle.flush();
    const live = graph.snapshot();
    await handle.dispose();
    const restored = createGraph("g");
    restored.state("a", 1);
    await restoreSnapshot(restored, pair);
    expect(restored.snapshot()).toEqual(live);
    expect(restored.kindOf("ghost")).toBeUndefined();
  });

  it("inBatch is true inside a batch only, on the root and on a subgraph view", () => {
    const graph = createGraph("g");
    graph.mount("m");
    const view = graph.subgraph("m");
    expect(graph.inBatch()).toBe(false);
    graph.batch(() => {
      expect(graph.inBatch()).toBe(true);
      expect(view.inBatch()).toBe(true);
    });
    expect(view.inBatch()).toBe(false);
    graph.observe(() => expect(graph.inBatch()).toBe(false)); // a listener runs after the wave settled
    graph.state("x", 1);
  });
});
