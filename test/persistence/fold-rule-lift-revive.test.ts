/**
 * A store actor restarted (a crash, the watchdog) gets the watcher state the lost one had (docs/design.md §3.10),
 * also when a lift (keepAboveSeq Infinity, what `unpinSharedWal` sends) followed a fold rule for the graph. The actor
 * keeps its fold rule on a lift; the connection's re-send list replaced the rule with the lift (task 222), so the
 * new actor had no rule and the graph's WAL was never folded in the background again (it grew until a restart).
 * Real parts: a SQLite file, an engine's worker thread terminated for real.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { unpinSharedWal } from "../../src/persistence/shared-wal.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("fold-rule-lift-revive");
afterAll(() => tmp.remove());

/** `count` waves of one set each with a 1 KiB value (the size rule's fold falls due), flushed every 50. */
async function write(g: ReactiveGraph, h: StorageHandle, count: number): Promise<void> {
  const pad = "x".repeat(1024);
  for (let i = 0; i < count; i++) {
    g.set(i % 2 === 0 ? "a" : "b", `${i}${pad}`);
    if (i % 50 === 49) await h.flush();
  }
  await h.flush();
}

describe("a fold rule after a lift, when the store's worker restarts", () => {
  it("the new actor keeps folding the graph's WAL in the background", async () => {
    const one = { kind: "sqlite" as const, path: tmp.path("one.db") };
    const access = openStorageEngineForTests({ threads: 1, onError: () => {} }, workerEntryPath());
    const engine = access.engine;
    const g = build();
    let frames: number;
    try {
      const wal = engine.kv<WALFrame>(one, { codec: walFrameCodec });
      // One pair: attach sends the graph's fold rule (the actor folds in the background).
      const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal }]);
      g.set("a", 1);
      await h.flush();
      // A lift after it (what a later attach of the graph writing this WAL with its own cadence sends): the actor
      // clears the graph's pin (none) and keeps the rule.
      unpinSharedWal(g.name, wal);
      g.set("a", 2);
      await h.flush();
      await access.terminate(one); // the next op starts a new actor for the store
      await write(g, h, 600); // ~600 KiB of frames: several times the size rule's bound (2 × 64 KiB)
      await h.dispose();
      // The rule's last fold ran before the handle's flushes settled or runs on the close's watch: both fold.
      await engine.close();
      frames = storedSeqs(one.path).frames.length;
    } finally {
      await engine.close();
    }
    expect(frames).toBeLessThan(300);
    expect(await restoredFrom(one.path, one.path)).toEqual({ a: g.get("a"), b: g.get("b") });
  });
});
