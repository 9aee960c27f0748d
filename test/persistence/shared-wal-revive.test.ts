/**
 * A store actor restarted (a crash, the watchdog) gets the commit-watcher settings the lost one had, and the last one
 * sent for a (watcher, graph) wins there as it did before (docs/design.md §3.10). The connection replayed them tier
 * by tier in the order the tiers were created: with two WAL proxies X, Y of one store, a shared WAL's pin sent
 * through Y and a fold rule sent through X (by another attach of the graph) came back in X-then-Y order whatever the
 * order sent. A fold rule replacing the pin folded the pairs' WAL and the other store restored silently to its attach
 * state; a pin replacing a later fold rule left the single pair's WAL unfolded for good.
 * Real parts: SQLite files, an engine's worker thread terminated for real.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, expectFoldedAfterRestart, restoredFrom, writtenAfterRestart } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-revive");
afterAll(() => tmp.remove());

/** Stores one and two (SQLite files), an engine whose workers the test may end, graph "g", two WAL tiers of one. */
function setUp(name: string) {
  const one = { kind: "sqlite" as const, path: tmp.path(`${name}-one.db`) };
  const two = { kind: "sqlite" as const, path: tmp.path(`${name}-two.db`) };
  const access = openStorageEngineForTests({ threads: 1, onError: () => {} }, workerEntryPath());
  const engine = access.engine;
  const first = engine.kv<WALFrame>(one, { codec: walFrameCodec });
  const second = engine.kv<WALFrame>(one, { codec: walFrameCodec });
  return { one, two, access, engine, g: build(), first, second };
}

describe("watcher settings after the store's worker restarts", () => {
  it("a shared WAL's pin sent last still holds, beside an older fold rule sent through another tier", async () => {
    const { one, two, access, engine, g, first: walY, second: walX } = setUp("pin"); // Y created first, used last
    try {
      // Session 1: one pair through X: the actor gets the graph's fold rule.
      const single = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal: walX }]);
      g.set("a", 1);
      await single.dispose();
      // Session 2: pairs sharing Y, baselines in one and two (two keeps its attach baseline): the pin replaces the rule.
      const h = attachSnapshotStorage(g, [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal: walY },
        { snapshot: engine.snapshot<GraphCheckpointRecord>(two, { compactEvery: 1_000_000 }), wal: walY },
      ]);
      g.set("a", 2);
      await h.flush();
      await writtenAfterRestart(access, one, g, h, 400);
    } finally {
      await engine.close();
    }
    const state = { a: g.get("a"), b: g.get("b") };
    expect({ one: await restoredFrom(one.path, one.path), two: await restoredFrom(two.path, one.path) }).toEqual({
      one: state,
      two: state,
    });
  });

  it("a fold rule sent last still holds, beside an older pin sent through another tier", async () => {
    const { one, two, access, engine, g, first: walX, second: walY } = setUp("rule"); // X created first, used last
    await expectFoldedAfterRestart(access, one, g, async () => {
      const group = attachSnapshotStorage(g, [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal: walY },
        { snapshot: engine.snapshot<GraphCheckpointRecord>(two), wal: walY },
      ]);
      g.set("a", 1);
      await group.dispose();
      // A later session of one pair through X: its fold rule replaces the pin.
      const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal: walX }]);
      g.set("a", 2);
      await h.flush();
      return h;
    });
  });
});
