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
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-revive");
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
      await access.terminate(one); // the next op starts a new actor for store one
      await write(g, h, 400);
      await h.dispose();
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
    let frames: number;
    try {
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
      await access.terminate(one);
      await write(g, h, 600); // ~600 KiB of frames: several times the size rule's bound (2 × 64 KiB)
      await h.dispose();
      // The rule's last fold ran before the handle's flushes settled or runs on the close's watch: both fold.
      await engine.close();
      frames = storedSeqs(one.path).frames.length;
    } finally {
      await engine.close();
    }
    expect(frames).toBeLessThan(300);
    const state = { a: g.get("a"), b: g.get("b") };
    expect(await restoredFrom(one.path, one.path)).toEqual(state);
  });
});
