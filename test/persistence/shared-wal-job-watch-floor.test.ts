/**
 * What an engine's compaction job keeps for the WAL groups of the thread that asked for it (docs/design.md §3.10,
 * "An attach registering while a fold runs"; review r203, task 207):
 * - a group of the graph registering on the job's store while the job ran set a flag that was never cleared, and the
 *   job then kept every frame, even when that group was disposed before the job listed them: a server attaching per
 *   request saw no fold delete a frame. Now the job keeps what the live groups' floors say (shared-wal-floors.ts).
 * - a group pairing a memory store that stays live: the job keeps the frames above its baseline and deletes the
 *   ones at or below it, whether the group registered before the job was asked or while it ran (with the flag, while
 *   it ran: none deleted).
 * - a handle with such a group dropped undisposed: its group's `live` entry held attach's report callback, whose scope
 *   holds the graph, so neither was ever collected and its floor held the graph's frames for good.
 *  * Real SQLite files, real worker threads (fixtures/paused-compact-worker.mjs pauses a job right before it lists the
 * frames, resumed by a message); no timing.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { floorStoreOfBackend, ownSharedWalFloor } from "../../src/persistence/shared-wal-floors.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { pausedCompaction, pausedJobEngine, readMark, resumePaused } from "./fixtures/paused-job.js";
import { build, restoredFrom, storedSeqs, writeRange as write } from "./fixtures/shared-wal.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const tmp = tempDir("shared-wal-job-watch-floor");
afterAll(() => tmp.remove());

/**
 * Graph g attached over store one's backend `b` with inline tiers: store one's own pair and a memory store's, sharing
 * store one's WAL, neither folding by cadence.
 */
function attachWithMemoryStore(g: ReactiveGraph, b: SqliteBackend): StorageHandle {
  const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec });
  return attachSnapshotStorage(
    g,
    [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b, { compactEvery: 1_000_000 }), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { compactEvery: 1_000_000 }), wal },
    ],
    { compactEvery: Number.POSITIVE_INFINITY },
  );
}

/**
 * An attach of graph g sharing store one's WAL between store one's own pair and a memory store's pair (inline tiers
 * of this thread): writes `from..to`, flushes, is disposed; nothing of it is live afterwards.
 */
async function briefAttach(one: string, from: number, to: number): Promise<void> {
  const b = sqliteBackend(one);
  try {
    const g = build();
    const h = attachWithMemoryStore(g, b);
    await write(g, h, from, to);
    await h.dispose();
  } finally {
    b.close();
  }
}

/** Runs a paused-fold job of graph g on store one; `meanwhile` runs while it is paused before listing its frames. */
async function pausedJob(one: string, meanwhile: () => Promise<void>): Promise<{ deletedFrames: number; framesBefore: number[] }> {
  const access = pausedJobEngine("fold");
  try {
    const { job } = await pausedCompaction(access, one, "fold");
    await meanwhile();
    const framesBefore = storedSeqs(one).frames;
    await resumePaused(access, one, "fold");
    expect(await job).toMatchObject({ graphName: "g" });
    const outcome = readMark(one, "fold-outcome/1") as { ok: boolean; deletedFrames?: number };
    expect(outcome.ok).toBe(true);
    return { deletedFrames: outcome.deletedFrames ?? 0, framesBefore };
  } finally {
    await access.engine.close();
  }
}

describe.each([
  ["before the job is asked (control)", "before"],
  ["while the job runs, disposed before it lists the frames", "during"],
] as const)("a brief attach of the graph on the job's store %s", (_n, when) => {
  it("leaves the job free to delete the frames no live group needs", async () => {
    const one = tmp.path(`brief-${when}.db`);
    await briefAttach(one, 1, 40);
    if (when === "before") await briefAttach(one, 41, 50);
    const { deletedFrames, framesBefore } = await pausedJob(one, async () => {
      if (when === "during") await briefAttach(one, 41, 50);
    });
    expect(framesBefore.length).toBeGreaterThan(0);
    // Before (during): 0, the flag kept every frame.
    expect(deletedFrames).toBeGreaterThan(0);
    expect(storedSeqs(one).frames.length).toBeLessThan(framesBefore.length);
  }, 180_000);
});

describe.each([
  ["before the job is asked", "before"],
  ["while the job runs", "during"],
] as const)("a memory store paired with the WAL (inline tiers) %s, live throughout, its baseline moving", (_n, when) => {
  it("the job deletes the frames at or below its baseline, keeps those above: it restores the live graph", async () => {
    const one = tmp.path(`live-${when}.db`);
    await briefAttach(one, 1, 20);
    const b = sqliteBackend(one);
    const mb = memoryBackend();
    const g = build();
    let h: ReturnType<typeof attachSnapshotStorage> | undefined;
    const memorySeq = async (): Promise<number> => ((await snapshotStorage<GraphCheckpointRecord>(mb).load("g")) as GraphCheckpointRecord).seq as number;
    const attachAndWrite = async (): Promise<void> => {
      const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec });
      h = attachSnapshotStorage(
        g,
        [
          { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal },
          { snapshot: snapshotStorage<GraphCheckpointRecord>(mb), wal },
        ],
        { compactEvery: 10 },
      );
      await write(g, h, 21, 65);
      const seq = await memorySeq();
      await write(g, h, 66, 68); // above the baselines (a new one every 10 waves)
      // The group's floor follows its memory baseline (published once the baseline was read back).
      await until(() => (ownSharedWalFloor(floorStoreOfBackend(b), "g") ?? -1) >= seq, "the memory store's floor to rise", { timeoutMs: 60_000 });
    };
    try {
      if (when === "before") await attachAndWrite();
      const { deletedFrames } = await pausedJob(one, async () => {
        if (when === "during") await attachAndWrite();
      });
      const memSeq = await memorySeq();
      const frames = storedSeqs(one).frames;
      // Before (during): 0, the flag kept every frame. Kept: every frame above the memory store's baseline.
      expect(deletedFrames).toBeGreaterThan(0);
      expect(frames.filter((s) => s <= memSeq)).toEqual([]);
      expect(frames.filter((s) => s > memSeq).length).toBeGreaterThan(0);
      await write(g, h!, 69, 71);
      const live = { a: g.get("a"), b: g.get("b") };
      const restored = build();
      await restoreSnapshot(restored, { snapshot: snapshotStorage<GraphCheckpointRecord>(mb), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
      expect({ a: restored.get("a"), b: restored.get("b") }).toEqual(live);
      await h!.dispose();
      expect(await restoredFrom(one, one)).toEqual(live);
    } finally {
      await h?.dispose();
      b.close();
    }
  }, 180_000);
});

describe("a memory store paired with the WAL (inline tiers), dropped undisposed and collected", () => {
  it("no longer holds the frames: a later job deletes the frames its store's baseline covers", async () => {
    const one = tmp.path("collected.db");
    await briefAttach(one, 1, 20);
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const store: StoreSpec = { kind: "sqlite", path: one };
    const b = sqliteBackend(one);
    try {
      const ref = await (async (): Promise<WeakRef<object>> => {
        const g = build();
        const h = attachWithMemoryStore(g, b);
        await write(g, h, 21, 60);
        return new WeakRef(g);
      })();
      expect(ownSharedWalFloor(floorStoreOfBackend(b), "g")).toBeDefined(); // the memory store's baseline
      for (let i = 0; i < 50 && ref.deref() !== undefined; i++) {
        await new Promise((r) => setImmediate(r));
        gc();
      }
      expect(ref.deref()).toBeUndefined();
      // Before: never collected (the group's entry held attach's report callback, and with it the graph).
      // Heard a turn or more after the collection; without it the floor stayed until another group of its slot came
      // or went, and every compactGraphInEngine job, which reads this thread's floors, kept what it holds.
      await until(() => ownSharedWalFloor(floorStoreOfBackend(b), "g") === undefined, "the collected group's floor to go", { timeoutMs: 60_000 });
      const framesBefore = storedSeqs(one).frames.length;
      expect(framesBefore).toBeGreaterThan(0);
      expect((await compactGraphInEngine(engine, store, "g")).deletedFrames).toBeGreaterThan(0);
      expect(storedSeqs(one).frames.length).toBeLessThan(framesBefore);
    } finally {
      await engine.close();
      b.close();
    }
  }, 180_000);
});
