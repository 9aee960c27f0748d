/**
 * An attach registering in the shared-WAL record (docs/design.md §3.10) while compactGraphInEngine runs. The job
 * (a real store actor, fixtures/paused-compact-worker.mjs) reads the record and then pauses right before it reads
 * the graph's baseline and lists the frames; meanwhile an attach of pairs {one, W}, {three, W} (W on store one)
 * registers through the main thread's inline tiers or a second engine (another actor, another connection to the
 * file: one process shares the store lock), writes its record, its baselines and frames. The job then folds
 * those frames: the floor it took from the record read before the attach named nothing, so it deleted every frame
 * above store three's baseline, and store three restored its attach state (or failed wal-gap once more frames came).
 * Real SQLite files and worker threads; no timing: the job waits on a message.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { CompactionResult } from "../../src/persistence/compaction.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { pausedCompaction, pausedJobEngine, readMark, resumePaused } from "./fixtures/paused-job.js";
import { build, expectLiveAfterDispose, recordedStores, sessionOfItsOwn, storedSeqs, writeInTens as write } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-compaction-race");
afterAll(() => tmp.remove());

interface Attacher {
  /** The pairs {one, W}, {three, W}, W on store one. */
  pairs(): AttachPair[];
  close(): Promise<void>;
}

function inlineAttacher(one: string, three: string): Attacher {
  const backends: SqliteBackend[] = [];
  return {
    pairs() {
      const [b1, b3] = [sqliteBackend(one), sqliteBackend(three)];
      backends.push(b1, b3);
      const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
      return [
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal },
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b3, { compactEvery: 1_000_000 }), wal },
      ];
    },
    async close() {
      for (const b of backends) b.close();
    },
  };
}

function engineAttacher(one: string, three: string): Attacher {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  const spec = (path: string): StoreSpec => ({ kind: "sqlite", path });
  return {
    pairs() {
      const wal = engine.kv<WALFrame>(spec(one), { codec: walFrameCodec });
      return [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(spec(one), { compactEvery: 1_000_000 }), wal },
        { snapshot: engine.snapshot<GraphCheckpointRecord>(spec(three), { compactEvery: 1_000_000 }), wal },
      ];
    },
    close: () => engine.close(),
  };
}

describe.each([
  ["inline tiers of the main thread", inlineAttacher],
  ["a second engine", engineAttacher],
])("an attach through %s registering while compactGraphInEngine folds", (_name, attacher) => {
  it("the job keeps the frames above the new store's baseline: both stores restore the live graph", async () => {
    const [one, three] = [tmp.path("one.db"), tmp.path("three.db")];
    await sessionOfItsOwn(one);
    const access = pausedJobEngine("fold");
    const a = attacher(one, three);
    try {
      // The job starts with no live handle and no record: its floor is none; it pauses before the baseline read.
      const { job } = await pausedCompaction(access, one, "fold");
      const g = build();
      const h = attachSnapshotStorage(g, a.pairs());
      await write(g, h, 41, 80);
      await until(() => recordedStores(one).length === 1, "the attach's record to be stored", { timeoutMs: 60_000 });
      const threeSeq = storedSeqs(three).baseline as number;
      const needed = storedSeqs(one).frames.filter((s) => s > threeSeq);
      expect(needed.length).toBeGreaterThan(0);
      await resumePaused(access, one, "fold");
      const result = await job;
      expect(result).toMatchObject({ graphName: "g" });
      expect(readMark(one, "fold-outcome/1")).toMatchObject({ ok: true });
      // Before: every frame above store three's baseline was folded into store one's and deleted.
      expect(storedSeqs(one).frames.filter((s) => s > threeSeq)).toEqual(needed);
      expect((result as CompactionResult).sharedWalPins?.map((p) => p.store)).toEqual(recordedStores(one));
      // Before: store three's attach state ({a: 40, b: 39}), or wal-gap once frames above 80 were written.
      await expectLiveAfterDispose(g, h, 81, 90, [three, one], one);
    } finally {
      await a.close();
      await access.engine.close();
    }
  }, 180_000);
});
