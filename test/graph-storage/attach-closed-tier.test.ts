/**
 * Attaching through engine tiers that are already closed returns a handle whose flush rejects with `closed`, as
 * with inline tiers. The refusal watch (watchRefusals) made attachSnapshotStorage throw instead, after the pairs
 * before the closed one had started (their watches and bootstrap owned by no handle) (review).
 * Real parts: SQLite files, a real worker thread.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { outcome } from "../support/refusals.js";

const tmp = tempDir("attach-closed-tier");
afterAll(() => tmp.remove());

it("a pair of closed engine tiers: attach returns a handle, its flush rejects with closed", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const open: StoreSpec = { kind: "sqlite", path: tmp.path("open.db") };
    const closed: StoreSpec = { kind: "sqlite", path: tmp.path("closed.db") };
    const snap2 = engine.snapshot<GraphCheckpointRecord>(closed);
    const wal2 = engine.kv<WALFrame>(closed, { codec: walFrameCodec });
    await Promise.all([snap2.close(), wal2.close()]);
    const g = createGraph("g");
    g.state("v", 0);
    const pairs = [
      { snapshot: engine.snapshot<GraphCheckpointRecord>(open), wal: engine.kv<WALFrame>(open, { codec: walFrameCodec }) },
      { snapshot: snap2, wal: wal2 },
    ];
    const handle = attachSnapshotStorage(g, pairs, { onError: () => {} });
    expect(await outcome(handle.flush())).toBe("rejected closed");
    await handle.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
});
