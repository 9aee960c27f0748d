/**
 * A store actor restarted (a crash, the watchdog) gets the watcher state the lost one had (docs/design.md §3.10),
 * also when a lift (keepAboveSeq Infinity, what `unpinSharedWal` sends) followed a fold rule for the graph. The actor
 * keeps its fold rule on a lift; the connection's re-send list replaced the rule with the lift (task 222), so the
 * new actor had no rule and the graph's WAL was never folded in the background again (it grew until a restart).
 * Real parts: a SQLite file, an engine's worker thread terminated for real.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { unpinSharedWal } from "../../src/persistence/shared-wal.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, expectFoldedAfterRestart } from "./fixtures/shared-wal.js";

const tmp = tempDir("fold-rule-lift-revive");
afterAll(() => tmp.remove());

describe("a fold rule after a lift, when the store's worker restarts", () => {
  it("the new actor keeps folding the graph's WAL in the background", async () => {
    const one = { kind: "sqlite" as const, path: tmp.path("one.db") };
    const access = openStorageEngineForTests({ threads: 1, onError: () => {} }, workerEntryPath());
    const engine = access.engine;
    const g = build();
    await expectFoldedAfterRestart(access, one, g, async () => {
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
      return h;
    });
  });
});
