/**
 * Pairs of one attach sharing a WAL tier (docs/design.md §3.7) restore from one WAL through each pair's own baseline,
 * in other stores. A compaction folds the WAL into the baseline of the store it runs on and deleted every frame at or
 * below it (compactGraph, compactGraphInEngine, the engine's autoCompact: docs/design.md §3.10), frames the other
 * pairs still needed above their older baselines: restoring through them then failed with wal-gap. Now frames are
 * deleted only at or below every other pair's stored baseline (a live handle's groups, `keepAboveSeq` otherwise).
 * And a second handle (or pair) reaching the same store through another tier object is refused, as the same tier
 * object was. Real parts: SQLite files, an engine's worker thread.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import type { AttachPair, GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-compaction");
afterAll(() => tmp.remove());

/** Waves of 2 sets each, flushed every 25 (frames to fold). */
async function write(g: ReactiveGraph, h: StorageHandle, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    g.set(i % 2 === 0 ? "a" : "b", i);
    if (i % 25 === 24) await h.flush();
  }
  await h.flush();
}

describe("a compaction leaves the frames other pairs on the WAL tier need", () => {
  it("inline SQLite: compactGraph while the pairs' handle is live; after dispose, with keepAboveSeq", async () => {
    const one = tmp.path("inline-one.db");
    const two = tmp.path("inline-two.db");
    // Session 1: the pair of store one alone (frames 2..41), so a later compaction has frames it may delete.
    let b1 = sqliteBackend(one);
    let g = build();
    let h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage(b1), wal: kvStorage<WALFrame>(b1, { codec: walFrameCodec }) }], {
      compactEvery: Number.POSITIVE_INFINITY,
    });
    await write(g, h, 0, 40);
    await h.dispose();
    const session1 = storedSeqs(one).frames.length;
    // Session 2: store two joins on store one's WAL; its baseline stays at its attach seq (a tier compactEvery).
    const b2 = sqliteBackend(two);
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    h = attachSnapshotStorage(
      g,
      [
        { snapshot: snapshotStorage(b1), wal },
        { snapshot: snapshotStorage(b2, { compactEvery: 1_000_000 }), wal },
      ],
      { compactEvery: Number.POSITIVE_INFINITY, onError: () => {} },
    );
    await write(g, h, 40, 60);
    const twoAt = (await snapshotStorage<GraphCheckpointRecord>(b2).load("g"))?.seq as number;
    const live = await compactGraph({ backend: b1 }, { graphName: "g" });
    // Folded into store one's baseline; deleted only the frames below store two's baseline (session 1's).
    expect({ folded: live.baselineSeq > twoAt, deleted: live.deletedFrames }).toEqual({ folded: true, deleted: session1 });
    await write(g, h, 100, 10);
    await h.dispose();
    b1.close();
    b2.close();
    const state = { a: g.get("a"), b: g.get("b") };
    expect({ one: await restoredFrom(one, one), two: await restoredFrom(two, one) }).toEqual({ one: state, two: state });
    // No live handle knows store two now: the caller says what it needs.
    b1 = sqliteBackend(one);
    const later = await compactGraph({ backend: b1 }, { graphName: "g", keepAboveSeq: twoAt });
    b1.close();
    expect(later.deletedFrames).toBe(0);
    expect(storedSeqs(one).frames[0]).toBe(twoAt + 1);
    expect({ one: await restoredFrom(one, one), two: await restoredFrom(two, one) }).toEqual({ one: state, two: state });
  });

  it("engine: compactGraphInEngine while the pairs' handle is live", async () => {
    const restored = await throughEngine("engine", {}, 1_000_000, async (g, h, _wal, engine, one) => {
      await write(g, h, 0, 60);
      const result = await compactGraphInEngine(engine, one, "g");
      expect(result.baselineSeq).toBeGreaterThan(1); // it folded
      await write(g, h, 60, 10);
    });
    expect(restored.two).toEqual(restored.state);
    expect(restored.one).toEqual(restored.state);
  });

  it("engine autoCompact: the store's actor folds the shared WAL but keeps what the other store needs", async () => {
    const restored = await throughEngine("auto", { autoCompact: { everyFrames: 20 } }, 1_000_000, (g, h) => write(g, h, 0, 200));
    // A fold ran (store one's own cadence wrote no baseline past its attach's: far below its size rule).
    expect(restored.oneBaseline).toBeGreaterThan(1);
    expect(restored.two).toEqual(restored.state);
    expect(restored.one).toEqual(restored.state);
  });

  it("engine autoCompact: frames below the other store's newer baselines are deleted as they are stored", async () => {
    let deleted = false;
    const restored = await throughEngine("pin", { autoCompact: { everyFrames: 20 } }, 30, async (g, h, wal) => {
      // Until a fold deleted a frame (store two's stored baselines moved the actor's pin on), at most 40 rounds.
      for (let round = 0; round < 40 && !deleted; round++) {
        await write(g, h, round * 25, 25);
        deleted = !(await wal.list("g/wal/")).includes("g/wal/00000000000000000002");
      }
    });
    expect(deleted).toBe(true);
    expect(restored.two).toEqual(restored.state);
    expect(restored.one).toEqual(restored.state);
  });
});

it("engine: a fold rule an earlier single-pair attach left in the store's actor does not fold the pairs' WAL", async () => {
  const pad = "x".repeat(1024);
  const restored = await throughEngine(
    "rule",
    {},
    1_000_000,
    async (g, h) => {
      // ~400 KiB of frames: past the rule's bound (2 × 64 KiB) several times over.
      for (let i = 0; i < 400; i++) {
        g.set(i % 2 === 0 ? "a" : "b", `${i}${pad}`);
        if (i % 50 === 49) await h.flush();
      }
    },
    // Session 1, same engine: one pair, both tiers in store one: the actor is given the graph's fold rule (§3.18).
    async (g, pair) => {
      const h1 = attachSnapshotStorage(g, [pair], { onError: () => {} });
      g.set("a", 1);
      await h1.dispose();
    },
  );
  expect(restored.two).toEqual(restored.state);
  expect(restored.one).toEqual(restored.state);
});

/**
 * Through an engine (SQLite stores): pairs of store one (the WAL and a baseline) and store two (a baseline, its tier's
 * compactEvery `twoEvery`), after `before` (a session of its own on the same engine); `run` writes; then graph "g"
 * restored through each, and store one's baseline seq.
 */
async function throughEngine(
  name: string,
  opts: Parameters<typeof openStorageEngine>[0],
  twoEvery: number,
  run: (g: ReactiveGraph, h: StorageHandle, wal: KvStorageTier<WALFrame>, engine: StorageEngine, one: StoreSpec) => Promise<void>,
  before?: (g: ReactiveGraph, pair: AttachPair) => Promise<void>,
): Promise<{ one: unknown; two: unknown; state: unknown; oneBaseline: number | undefined }> {
  const one = { kind: "sqlite" as const, path: tmp.path(`${name}-one.db`) };
  const two = { kind: "sqlite" as const, path: tmp.path(`${name}-two.db`) };
  const engine = openStorageEngine({ threads: 1, ...opts, onError: () => {} });
  const g = build();
  try {
    const wal = engine.kv<WALFrame>(one, { codec: walFrameCodec });
    const first: AttachPair = { snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal };
    await before?.(g, first);
    const second: AttachPair = { snapshot: engine.snapshot<GraphCheckpointRecord>(two, { compactEvery: twoEvery }), wal };
    const h = attachSnapshotStorage(g, [first, second], { onError: () => {} });
    await run(g, h, wal, engine, one);
    await h.dispose();
  } finally {
    await engine.close(); // lets the folds in flight end
  }
  return {
    one: await restoredFrom(one.path, one.path),
    two: await restoredFrom(two.path, one.path),
    state: { a: g.get("a"), b: g.get("b") },
    oneBaseline: storedSeqs(one.path).baseline,
  };
}

describe("two tier objects over one store are one store to attach", () => {
  const refused = expect.objectContaining({ code: "invalid-argument", details: expect.objectContaining({ graph: "g" }) });

  it("inline: a second handle's WAL tier over the same backend, or another backend of the same file, is refused", async () => {
    const path = tmp.path("claims.db");
    const b1 = sqliteBackend(path);
    const b1again = sqliteBackend(path); // a second handle of the store in this process (they share its lock)
    const b2 = sqliteBackend(tmp.path("claims-two.db"));
    try {
      const h = attachSnapshotStorage(build(), [{ snapshot: snapshotStorage(b1), wal: kvStorage<WALFrame>(b1, { codec: walFrameCodec }) }]);
      const other = (wal: KvStorageTier<WALFrame>, snapshot: SnapshotStorageTier<GraphCheckpointRecord> = snapshotStorage(b2)) => () =>
        attachSnapshotStorage(build(), [{ snapshot, wal }]);
      expect(other(kvStorage<WALFrame>(b1, { codec: walFrameCodec }))).toThrow(refused);
      expect(other(kvStorage<WALFrame>(b1again, { codec: walFrameCodec }))).toThrow(refused);
      // Its baseline's key, through another snapshot tier of the store.
      expect(other(kvStorage<WALFrame>(b2, { codec: walFrameCodec }), snapshotStorage(b1again))).toThrow(refused);
      await h.dispose();
      // One attach: two WAL tier objects of one store would number apart, two snapshot tiers write one key.
      const walA = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
      const walB = kvStorage<WALFrame>(b1again, { codec: walFrameCodec });
      expect(() => attachSnapshotStorage(build(), [{ snapshot: snapshotStorage(b1), wal: walA }, { snapshot: snapshotStorage(b2), wal: walB }])).toThrow(refused);
      expect(() => attachSnapshotStorage(build(), [{ snapshot: snapshotStorage(b2), wal: walA }, { snapshot: snapshotStorage(b2) }])).toThrow(refused);
      // Nothing stays claimed by the refused attaches.
      await attachSnapshotStorage(build(), [{ snapshot: snapshotStorage(b1again), wal: walB }]).dispose();
    } finally {
      b1.close();
      b1again.close();
      b2.close();
    }
  });

  it("engine: a second proxy of the same store spec, or an inline tier of the same file, is refused", async () => {
    const one = { kind: "sqlite" as const, path: tmp.path("engine-claims.db") };
    const two = { kind: "sqlite" as const, path: tmp.path("engine-claims-two.db") };
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const h = attachSnapshotStorage(build(), [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal: engine.kv<WALFrame>(one, { codec: walFrameCodec }) },
      ]);
      const s2 = engine.snapshot<GraphCheckpointRecord>(two);
      expect(() => attachSnapshotStorage(build(), [{ snapshot: s2, wal: engine.kv<WALFrame>(one, { codec: walFrameCodec }) }])).toThrow(refused);
      const inline = sqliteBackend(one.path);
      try {
        expect(() => attachSnapshotStorage(build(), [{ snapshot: s2, wal: kvStorage<WALFrame>(inline, { codec: walFrameCodec }) }])).toThrow(refused);
      } finally {
        inline.close();
      }
      await h.dispose();
    } finally {
      await engine.close();
    }
  });
});
