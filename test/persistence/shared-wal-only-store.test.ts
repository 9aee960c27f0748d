/**
 * Pairs sharing a WAL tier whose store holds no pair's baseline (pairs {S1, W}, {S2, W}; docs/design.md §3.10). The
 * engine's autoCompact in W's actor had nothing to fold into: every fold failed baseline-missing (onError a dozen
 * times for 300 frames) and no frame was ever deleted, so W grew without end. Now a compaction there deletes the frames
 * at or below the lowest baseline seq the pairs stored (the pin attach keeps in W's actor), folding nothing. Real
 * parts: SQLite files, an engine's worker thread.
 */
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-only-store");
afterAll(() => tmp.remove());

it("autoCompact in a store holding the pairs' WAL but no baseline deletes the frames every baseline covers", async () => {
  const s1 = { kind: "sqlite" as const, path: tmp.path("s1.db") };
  const s2 = { kind: "sqlite" as const, path: tmp.path("s2.db") };
  const w = { kind: "sqlite" as const, path: tmp.path("w.db") };
  const errors: string[] = [];
  const report = (e: Error): void => void errors.push(`${(e as { code?: string }).code}: ${e.message}`);
  const engine = openStorageEngine({ threads: 1, autoCompact: { everyFrames: 20 }, onError: report });
  const g = build();
  try {
    const wal = engine.kv<WALFrame>(w, { codec: walFrameCodec });
    const h = attachSnapshotStorage(
      g,
      [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(s1, { compactEvery: 30 }), wal },
        { snapshot: engine.snapshot<GraphCheckpointRecord>(s2, { compactEvery: 30 }), wal },
      ],
      { onError: report },
    );
    for (let i = 0; i < 300; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i);
      if (i % 25 === 24) await h.flush();
    }
    await h.flush();
    await h.dispose();
  } finally {
    await engine.close(); // folds due run to their end
  }
  expect(errors).toEqual([]);
  const inW = storedSeqs(w.path);
  expect(inW.baseline).toBeUndefined(); // nothing was folded into a baseline no pair reads
  // 300 frames were written; those at or below both pairs' stored baselines went.
  expect(inW.frames.length).toBeLessThan(150);
  expect(Math.min(...inW.frames)).toBeGreaterThan(100);
  const state = { a: g.get("a"), b: g.get("b") };
  expect({ s1: await restoredFrom(s1.path, w.path), s2: await restoredFrom(s2.path, w.path) }).toEqual({ s1: state, s2: state });
});

it("inline compactGraph of that store while the pairs' handle is live deletes the frames both stored baselines cover", async () => {
  const [s1, s2, w] = ["inline-s1.db", "inline-s2.db", "inline-w.db"].map((f) => tmp.path(f)) as [string, string, string];
  const b1 = sqliteBackend(s1);
  const b2 = sqliteBackend(s2);
  const bw = sqliteBackend(w);
  const g = build();
  let result: Awaited<ReturnType<typeof compactGraph>>;
  try {
    const wal = kvStorage<WALFrame>(bw, { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 30 }), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b2, { compactEvery: 1_000_000 }), wal },
    ]);
    for (let i = 0; i < 100; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i + 1); // 100 frames, seqs 2..101 (the attach baselines took 1)
      if (i % 25 === 24) await h.flush();
    }
    await h.flush();
    // s2 keeps its attach baseline (seq 1): nothing above it may go; then both store one at seq 102.
    expect((await compactGraph({ backend: bw }, { graphName: "g" })).deletedFrames).toBe(0);
    await h.rebaseline();
    g.set("a", "last");
    await h.flush();
    result = await compactGraph({ backend: bw }, { graphName: "g" });
    await h.dispose();
  } finally {
    for (const b of [b1, b2, bw]) b.close();
  }
  expect(result).toMatchObject({ baselineSeq: 0, foldedFrames: 0, deletedFrames: 100 });
  expect(storedSeqs(w)).toEqual({ baseline: undefined, frames: [103] });
  const state = { a: g.get("a"), b: g.get("b") };
  expect({ s1: await restoredFrom(s1, w), s2: await restoredFrom(s2, w) }).toEqual({ s1: state, s2: state });
});
