/**
 * The commit step of a fold that ran beside the store's other work (compactGraph with `release` / `exclusive`, as the
 * store's actor runs it: docs/design.md §3.10). When the graph's baseline changed after the fold read it:
 * - a baseline at or above the fold's seq (attach's own with compactEvery, rebaseline) covers every frame the fold
 *   would have deleted: the fold keeps that baseline and deletes them (otherwise a writer that rebaselines often
 *   would starve every fold, and its WAL would grow without end);
 * - a baseline above the fold's start and below its seq (the writer's own, flushed late) is older than the fold's,
 *   which replaces it;
 * - a baseline at or below the fold's start was rewritten: nothing is changed, StorageError `store-busy` (the
 *   watcher retries).
 * The step is entered through `exclusive`, where the test changes the baseline first: a real SQLite file, no timing.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph, type CompactionContext } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { BatchOp } from "../../src/backend/types.js";
import { sealWalFrame, walFrameCodec } from "../../src/wal/codec.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { GRAPH, buildGraph, inlinePair, randomWave, restoredSnapshot, rng, sqliteStoreWithFrames, storedFrameSeqs, tempDir } from "./fixtures.js";

const tmp = tempDir("fold-commit-step");
afterAll(() => tmp.remove());
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A store whose graph has `waves` frames above its attach baseline (baselines only when asked). */
const storeWithFrames = (name: string, waves: number) => sqliteStoreWithFrames(tmp.path(`${name}.db`), waves, 0xc0ffee, cleanups);

/** The actor's context, except that `exclusive` runs `before` ahead of the commit step. */
function ctxChangingBaseline(backend: CompactionContext["backend"], before: () => Promise<void> | void): CompactionContext {
  let released = 0;
  return {
    backend,
    release: () => void released++,
    async exclusive(step) {
      expect(released).toBeGreaterThan(0); // the step runs after the read was let go beside the store's work
      await before();
      return step();
    },
  };
}

describe("a fold's commit step when the baseline changed after the fold read it (SQLite file)", () => {
  it("unchanged: the fold's baseline is stored and the frames it covers deleted", async () => {
    const { backend, graph, seq } = await storeWithFrames("unchanged", 12);
    const frames = (await storedFrameSeqs(backend)).length;
    expect(frames).toBeGreaterThanOrEqual(12);
    const result = await compactGraph(ctxChangingBaseline(backend, () => undefined), { graphName: GRAPH });
    expect(result).toMatchObject({ baselineSeq: seq, deletedFrames: frames });
    expect(await storedFrameSeqs(backend)).toEqual([]);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("a newer baseline (rebaseline, above every frame): kept, and the frames it covers are deleted", async () => {
    const { backend, graph, handle, seq, baseline } = await storeWithFrames("newer", 12);
    const frames = (await storedFrameSeqs(backend)).length;
    expect(frames).toBeGreaterThanOrEqual(12);
    let newerSeq = 0;
    const result = await compactGraph(
      ctxChangingBaseline(backend, async () => {
        newerSeq = await handle.rebaseline();
      }),
      { graphName: GRAPH },
    );
    expect(newerSeq).toBeGreaterThan(seq);
    expect(result).toMatchObject({ baselineSeq: newerSeq, previousBaselineSeq: newerSeq, foldedFrames: 0, deletedFrames: frames });
    expect(baseline().seq).toBe(newerSeq); // not replaced by the fold's older one
    expect(await storedFrameSeqs(backend)).toEqual([]);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("a baseline between the fold's start and its seq (the writer's, flushed late): replaced by the fold's", async () => {
    const { backend, graph, seq, baseline } = await storeWithFrames("between", 12);
    const frames = (await storedFrameSeqs(backend)).length;
    const startSeq = baseline().seq;
    let between = 0;
    const result = await compactGraph(
      ctxChangingBaseline(backend, () => {
        between = startSeq + 3;
        backend.write(GRAPH, jsonCodec.encode({ ...baseline(), seq: between }));
      }),
      { graphName: GRAPH },
    );
    expect(between).toBeLessThan(seq);
    expect(result).toMatchObject({ baselineSeq: seq, previousBaselineSeq: startSeq, deletedFrames: frames });
    expect(baseline().seq).toBe(seq);
    expect(await storedFrameSeqs(backend)).toEqual([]);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("a baseline at or below the fold's start (rewritten at its old seq): store-busy, nothing changed", async () => {
    const { backend, graph, seq, baseline } = await storeWithFrames("older", 12);
    const framesBefore = await storedFrameSeqs(backend);
    let rewritten: GraphCheckpointRecord | undefined;
    const failure = await compactGraph(
      ctxChangingBaseline(backend, () => {
        rewritten = { ...baseline(), timestamp_ns: Number(baseline().timestamp_ns) + 1_000_000 };
        backend.write(GRAPH, jsonCodec.encode(rewritten));
      }),
      { graphName: GRAPH },
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as StorageError).code).toBe("store-busy");
    expect(baseline()).toEqual(rewritten);
    expect(baseline().seq).toBeLessThan(seq);
    expect(await storedFrameSeqs(backend)).toEqual(framesBefore);
    expect(framesBefore.length).toBeGreaterThanOrEqual(12);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("more frames than one step deletes: the baseline and a first chunk commit together, the rest in steps of their own", async () => {
    const backend = sqliteBackend(tmp.path("chunks.db"));
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
    const from = await handle.flush();
    await handle.dispose();
    cleanups.push(() => backend.close());
    // 20,000 frames setting "a", as the writer would have stored them (written directly: attach would take seconds).
    const FRAMES = 20_000;
    const ops: BatchOp[] = [];
    for (let seq = from + 1; seq <= from + FRAMES; seq++) {
      const change = { structure: "graph", version: 1, t_ns: 1, lifecycle: "data", change: { kind: "node.set", path: "a", value: seq } } as const;
      const frame = sealWalFrame({ t: "c", lifecycle: "data", path: "a", change, frame_seq: seq, frame_t_ns: 1 });
      ops.push({ op: "put", key: walFrameKey(graphWalPrefix(GRAPH), seq), value: walFrameCodec.encode(frame) });
    }
    backend.writeBatch(ops);
    const before = await restoredSnapshot(inlinePair(backend));
    let steps = 0;
    const result = await compactGraph(
      ctxChangingBaseline(backend, () => void steps++),
      { graphName: GRAPH },
    );
    expect(steps).toBeGreaterThanOrEqual(3); // 20,000 deletions: more than two steps' worth
    expect(result).toMatchObject({ baselineSeq: from + FRAMES, deletedFrames: FRAMES, atomic: false });
    expect(await storedFrameSeqs(backend)).toEqual([]);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(before);
  });
});
