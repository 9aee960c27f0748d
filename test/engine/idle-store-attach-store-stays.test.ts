/**
 * Review r218 #2, task 220: a store a graph was attached to through the engine, one pair with a wave cadence
 * (compactEvery), handle disposed and its tiers closed, is shut down. Attach sends such a pair's WAL a lift of the
 * graph's pin (keepAboveSeq Infinity), which sets nothing; it was counted as a setting and kept every such store open.
 * (Without compactEvery attach hands the store a background fold rule, a setting that keeps it open: idle-store-close.)
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("t220-attach");
afterAll(() => root.remove());

describe("a store a graph was attached to, disposed and closed", () => {
  it("is shut down like any other store once its tiers closed", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    try {
      for (let t = 0; t < 5; t++) {
        const store: StoreSpec = { kind: "sqlite", path: root.fresh(`t${t}.db`) };
        const g = createGraph("g");
        g.state("a", 0);
        const snapshot = engine.snapshot<GraphCheckpointRecord>(store, { compactEvery: 10 });
        const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
        const h = attachSnapshotStorage(g, [{ snapshot, wal }]);
        g.set("a", t + 1);
        await h.flush();
        await h.dispose();
        await snapshot.close();
        await wal.close();
      }
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
  }, 120_000);
});
