/**
 * A follower's idle poll asks whether the stored baseline moved past the frames it applied. It reads the baseline's
 * head for that (a prefix of its bytes where the backend reads prefixes), not the whole baseline: parsing a baseline
 * of 100,000 nodes cost ~375 ms of main-thread time per such poll (bench/reclaim-readback.ts). A baseline that did
 * move is still reloaded and checked whole.
 */
import { afterEach, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { GRAPH, buildGraph, inlinePair, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A read-only SQLite handle whose whole-value reads of the baseline's key are counted. */
function countingReader(path: string): StorageBackend & { baselineReads: number; prefixReads: number } {
  const inner: SqliteBackend = sqliteBackend(path, { readOnly: true });
  cleanups.push(() => inner.close());
  const b = Object.create(inner) as SqliteBackend & { baselineReads: number; prefixReads: number };
  b.baselineReads = 0;
  b.prefixReads = 0;
  b.read = (key: string) => {
    if (key === GRAPH) b.baselineReads++;
    return inner.read(key);
  };
  b.readPrefix = (key: string, maxBytes: number) => {
    if (key === GRAPH) b.prefixReads++;
    return inner.readPrefix(key, maxBytes);
  };
  return b;
}

describe("follower idle polls read the baseline's head", () => {
  it("does not read the whole baseline when it did not move, and reloads it when it did", async () => {
    const tmp = tempDir("follow-head");
    cleanups.push(() => tmp.remove());
    const path = tmp.path("store.db");
    const backend = sqliteBackend(path);
    cleanups.push(() => backend.close());
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    const reader = countingReader(path);
    const copy = buildGraph();
    const follower = await followGraph(copy, inlinePair(reader), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    const random = rng(7);
    const loadsAtStart = reader.baselineReads;
    for (let i = 0; i < 5; i++) {
      randomWave(graph, random);
      await handle.flush();
      await follower.poll(); // applies the frames
      await follower.poll(); // nothing new, counter moved: did the baseline move past them?
    }
    expect(reader.prefixReads).toBeGreaterThanOrEqual(5);
    expect(reader.baselineReads).toBe(loadsAtStart);
    expect(copy.snapshot()).toEqual(graph.snapshot());
    // A compaction folds the frames into a new baseline: the head says so, and the follower reloads it whole.
    randomWave(graph, random);
    await handle.flush();
    await compactGraph({ backend }, { graphName: GRAPH, keepFrames: 0 });
    await follower.poll();
    expect(reader.baselineReads).toBeGreaterThan(loadsAtStart);
    expect(follower.stats().reloads).toBe(1);
    expect(copy.snapshot()).toEqual(graph.snapshot());
  });
});
