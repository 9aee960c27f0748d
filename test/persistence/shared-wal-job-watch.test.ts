/**
 * An engine's compaction job (it runs in the store actor's thread, which sees none of the main thread's attach
 * handles) against an attach of this process registering while it runs (docs/design.md §3.10, "An attach registering
 * while a fold runs"):
 * - a store with no lasting id (a memory store) paired with the WAL: the record never names it and the job's thread
 *   has no group of it, so the fold saw neither and deleted every frame above its baseline (its restore then failed
 *   wal-gap). The job (fixtures/paused-compact-worker.mjs) pauses after its record read, right before it lists the
 *   frames; the attach goes through a second engine, the main thread's inline tiers or the job's own engine.
 * - a forced forget (`forceForget`) of a store a second engine attached after compactGraphInEngine's check: the job
 *   (fixtures/paused-forget-worker.mjs) pauses right before it reads the record for the forget; the attach writes its
 *   record naming the store meanwhile; the forced forget dropped it and the fold deleted the frames above its baseline.
 * Real SQLite files, real worker threads; no timing: the jobs wait on a message.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { EngineTestAccess } from "../../src/engine/engine.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { AttachPair, GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { pausedCompaction, pausedJobEngine, readMark, resumePaused, sqlite } from "./fixtures/paused-job.js";
import { build, expectLiveAfterDispose, recordedStores, restoredFrom, sessionOfItsOwn, storedSeqs, writeInTens as write } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-job-watch");
afterAll(() => tmp.remove());

/** Tiers of the pairs {one, W}, {memory, W}, W on store one, and graph g restored from the memory store and W. */
interface MemoryAttacher {
  pairs(): AttachPair[];
  memorySeq(): Promise<number>;
  restoreMemory(): Promise<unknown>;
  close(): Promise<void>;
}

/** Tiers of one engine (or of the job's own engine `engine`, left open). */
function engineMemoryAttacher(one: string, engine: StorageEngine, owned: boolean): MemoryAttacher {
  const mem: StoreSpec = { kind: "memory", name: tmp.path(`mem-${owned ? "second" : "same"}`) };
  const memTier = (): SnapshotStorageTier<GraphCheckpointRecord> => engine.snapshot<GraphCheckpointRecord>(mem, { compactEvery: 1_000_000 });
  const walTier = (): KvStorageTier<WALFrame> => engine.kv<WALFrame>(sqlite(one), { codec: walFrameCodec });
  return {
    pairs() {
      const wal = walTier();
      return [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(sqlite(one), { compactEvery: 1_000_000 }), wal },
        { snapshot: memTier(), wal },
      ];
    },
    async memorySeq() {
      return ((await memTier().load("g")) as GraphCheckpointRecord).seq as number;
    },
    async restoreMemory() {
      return restoreWith(memTier(), walTier());
    },
    close: () => (owned ? engine.close() : Promise.resolve()),
  };
}

function inlineMemoryAttacher(one: string): MemoryAttacher {
  const backends: SqliteBackend[] = [];
  const mb = memoryBackend();
  const walTier = (): KvStorageTier<WALFrame> => {
    const b = sqliteBackend(one);
    backends.push(b);
    return kvStorage<WALFrame>(b, { codec: walFrameCodec });
  };
  return {
    pairs() {
      const wal = walTier();
      return [
        { snapshot: snapshotStorage<GraphCheckpointRecord>(backends[backends.length - 1]!, { compactEvery: 1_000_000 }), wal },
        { snapshot: snapshotStorage<GraphCheckpointRecord>(mb, { compactEvery: 1_000_000 }), wal },
      ];
    },
    async memorySeq() {
      return ((await snapshotStorage<GraphCheckpointRecord>(mb).load("g")) as GraphCheckpointRecord).seq as number;
    },
    async restoreMemory() {
      return restoreWith(snapshotStorage<GraphCheckpointRecord>(mb), walTier());
    },
    async close() {
      for (const b of backends) b.close();
    },
  };
}

/** Graph g restored from `snapshot`'s baseline and `wal`'s frames: its values, or the error's code. */
async function restoreWith(snapshot: SnapshotStorageTier<GraphCheckpointRecord>, wal: KvStorageTier<WALFrame>): Promise<unknown> {
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot, wal });
    return { a: g.get("a"), b: g.get("b") };
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message.slice(0, 80)}`;
  }
}

/** The memory attacher of the case: through a second engine, the job's own engine (`access`'s), or inline tiers. */
function memoryAttacherThrough(through: "second" | "same" | "inline", one: string, access: EngineTestAccess): MemoryAttacher {
  if (through === "second") return engineMemoryAttacher(one, openStorageEngine({ threads: 1, onError: () => {} }), true);
  return through === "same" ? engineMemoryAttacher(one, access.engine, false) : inlineMemoryAttacher(one);
}

/**
 * Graph g attached through `a`'s pairs while the job is paused, sets `from`..`from + 39` written: the memory store's
 * baseline seq, and the frames above it in store one (some).
 */
async function attachedWhilePaused(
  one: string,
  a: MemoryAttacher,
  from: number,
): Promise<{ g: ReactiveGraph; h: StorageHandle; memSeq: number; needed: number[] }> {
  const g = build();
  const h = attachSnapshotStorage(g, a.pairs());
  await write(g, h, from, from + 39);
  const memSeq = await a.memorySeq();
  const needed = storedSeqs(one).frames.filter((s) => s > memSeq);
  expect(needed.length).toBeGreaterThan(0);
  return { g, h, memSeq, needed };
}

/**
 * Once the job ended: it kept the frames above the memory store's baseline; with sets `from`..`from + 9` written
 * after it, the memory store (over W) and store one restore the live graph.
 */
async function expectMemoryStoreRestores(
  one: string,
  a: MemoryAttacher,
  { g, h, memSeq, needed }: { g: ReactiveGraph; h: StorageHandle; memSeq: number; needed: number[] },
  from: number,
): Promise<void> {
  expect(readMark(one, "fold-outcome/1")).toMatchObject({ ok: true });
  // Before: every frame above the memory store's baseline was folded into store one's and deleted.
  expect(storedSeqs(one).frames.filter((s) => s > memSeq)).toEqual(needed);
  await write(g, h, from, from + 9);
  const live = { a: g.get("a"), b: g.get("b") };
  // Before: wal-gap (the memory store's frames gone, the 10 written since above them).
  expect(await a.restoreMemory()).toEqual(live);
  await h.dispose();
  expect(await restoredFrom(one, one)).toEqual(live);
}

describe.each([
  ["a second engine", "second"],
  ["inline tiers of the main thread", "inline"],
  ["the job's own engine", "same"],
] as const)("a memory store paired with the WAL through %s while compactGraphInEngine folds", (_name, through) => {
  it("the job keeps the frames above the memory store's baseline: it restores the live graph", async () => {
    const one = tmp.path(`mem-${through}.db`);
    await sessionOfItsOwn(one);
    const access = pausedJobEngine("fold");
    const a = memoryAttacherThrough(through, one, access);
    try {
      // No live handle when the job is asked for: its floor is none; it pauses before it lists the frames.
      const { job } = await pausedCompaction(access, one, "fold");
      const attached = await attachedWhilePaused(one, a, 41); // sets 41..80
      await resumePaused(access, one, "fold");
      expect(await job).toMatchObject({ graphName: "g" });
      await expectMemoryStoreRestores(one, a, attached, 81); // before: frames 41..80 gone, 81..90 above them
    } finally {
      await a.close();
      await access.engine.close();
    }
  }, 180_000);
});

describe("a forced forget in compactGraphInEngine of a store a second engine attached after it was asked", () => {
  it("is refused (invalid-argument, attachedStores), nothing changed: the store restores the live graph", async () => {
    const [one, three] = [tmp.path("forget-one.db"), tmp.path("forget-three.db")];
    // Session 1: pairs {one, W}, {three, W} inline, ended: the record names store three.
    {
      const [b1, b3] = [sqliteBackend(one), sqliteBackend(three)];
      const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
      const g = build();
      const h = attachSnapshotStorage(g, [
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal },
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b3, { compactEvery: 1_000_000 }), wal },
      ]);
      await write(g, h, 1, 40);
      await h.dispose();
      b1.close();
      b3.close();
    }
    const [threeId] = recordedStores(one);
    expect(threeId).toBeDefined();
    const access = pausedJobEngine("forget");
    const second = openStorageEngine({ threads: 1, onError: () => {} });
    const store = sqlite(one);
    try {
      // No live handle of store three when the job is asked for: the main thread's check lets the forced forget go.
      const { job } = await pausedCompaction(access, one, "forget", { forgetStores: [threeId!], forceForget: true });
      const wal = second.kv<WALFrame>(sqlite(one), { codec: walFrameCodec });
      const g = build();
      const h = attachSnapshotStorage(g, [
        { snapshot: second.snapshot<GraphCheckpointRecord>(sqlite(one), { compactEvery: 1_000_000 }), wal },
        { snapshot: second.snapshot<GraphCheckpointRecord>(sqlite(three), { compactEvery: 1_000_000 }), wal },
      ]);
      await write(g, h, 41, 80); // its record (naming three) lands before its first frame
      const threeSeq = storedSeqs(three).baseline as number;
      const needed = storedSeqs(one).frames.filter((s) => s > threeSeq);
      expect(needed.length).toBeGreaterThan(0);
      await resumePaused(access, one, "forget");
      // Before: the forget went through and the fold deleted every frame above store three's baseline.
      expect(await job).toMatchObject({ code: "invalid-argument", details: { attachedStores: [threeId] } });
      expect(readMark(one, "forget-outcome/1")).toMatchObject({ ok: false, code: "invalid-argument" });
      expect(storedSeqs(one).frames.filter((s) => s > threeSeq)).toEqual(needed);
      expect(recordedStores(one)).toEqual([threeId]);
      // Before: wal-gap (frames 41..80 gone) once the handle's record named three again at dispose.
      await expectLiveAfterDispose(g, h, 81, 90, [three, one], one);
    } finally {
      await second.close();
      await access.engine.close();
    }
  }, 180_000);
});

describe.each([
  ["autoCompact", "a second engine", "second"],
  ["autoCompact", "inline tiers of the main thread", "inline"],
  ["autoCompact", "the folding engine itself", "same"],
  ["a fold rule", "a second engine", "second"],
  ["a fold rule", "inline tiers of the main thread", "inline"],
  ["a fold rule", "the folding engine itself", "same"],
] as const)("the engine's %s folds while a memory store is paired with the WAL through %s (task 202)", (trigger, _name, through) => {
  it("the fold no thread asked for keeps the frames above the memory store's baseline: it restores the live graph", async () => {
    const rule = trigger === "a fold rule";
    const one = tmp.path(`auto-${rule ? "rule" : "every"}-${through}.db`);
    const store = sqlite(one);
    // autoCompact folds graph g once 20 frames were committed; a fold rule once its WAL passed 64 KiB (attach's
    // default cadence of one engine pair). The fixture pauses that job before it lists the frames.
    const access = pausedJobEngine("fold", rule ? {} : { autoCompact: { everyFrames: 20 } });
    const a = memoryAttacherThrough(through, one, access);
    try {
      let last = 0;
      {
        // A one-pair session through the engine (it lifts any pin, or hands over the fold rule): its frames start
        // the fold, which no thread asked for. It pauses once started (the flushes go on beside it).
        const g = build();
        const h = attachSnapshotStorage(g, [
          {
            snapshot: access.engine.snapshot<GraphCheckpointRecord>(store, rule ? {} : { compactEvery: 1_000_000 }),
            wal: access.engine.kv<WALFrame>(store, { codec: walFrameCodec }),
          },
        ]);
        do {
          expect(last).toBeLessThan(20_000); // 64 KiB of frames: a few thousand at most
          await write(g, h, last + 1, last + 20);
          last += 20;
        } while (readMark(one, "fold-paused/1") === undefined);
        await h.dispose();
      }
      const attached = await attachedWhilePaused(one, a, last + 1); // sets last + 1..last + 40
      await resumePaused(access, one, "fold");
      await until(() => readMark(one, "fold-outcome/1") !== undefined, "the autoCompact job to end", { timeoutMs: 60_000 });
      await expectMemoryStoreRestores(one, a, attached, last + 41);
    } finally {
      await a.close();
      await access.engine.close();
    }
  }, 180_000);
});
