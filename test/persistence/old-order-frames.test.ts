/**
 * Stores written before removals were ordered by dependency (review s13c F3) hold waves whose frames do not replay
 * one by one: `graph.remove m` before the `graph.unmount x` that takes its dependent x::d, or `graph.remove x` and
 * `graph.unmount u` with u::z depending on x and x on u::y (no order of the two replays). Such stores failed every
 * restore (phase-failed) until a compaction folded the frames. Restore now applies a spec phase whose removal the
 * graph refuses as its net result, as the compaction would; other refusals still fail the phase.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import {
  attachSnapshotStorage,
  createGraph,
  decomposeDiffToFrames,
  restoreSnapshot,
  RestoreError,
  type GraphCheckpointRecord,
  type GraphSnapshotDiff,
  type JsonValue,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";

const id = (v: JsonValue): JsonValue => [v];
const none: GraphSnapshotDiff = { nodesAdded: [], nodesRemoved: [], subgraphsAdded: [], subgraphsRemoved: [], valuesChanged: [] };

/** A store holding `build()`'s baseline and then one frame per diff in `diffs`, in that order. */
async function storeWith(build: () => ReactiveGraph, diffs: GraphSnapshotDiff[]) {
  const backend = memoryBackend();
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
  const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
  const h = attachSnapshotStorage(build(), [{ snapshot, wal }]);
  await h.flush();
  await h.dispose();
  let seq = ((await snapshot.load("g")) as GraphCheckpointRecord).seq;
  for (const d of diffs) {
    for (const f of decomposeDiffToFrames(d, { timestampNs: 1, baseSeq: seq })) {
      seq = f.frame_seq;
      wal.save(walFrameKey("g/wal", seq), f as WALFrame);
    }
  }
  await wal.flush();
  return { snapshot, wal };
}

describe("frames in an order that does not replay one by one", () => {
  it("remove m, then unmount x holding x::d (which depends on m)", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("m", 1);
      g.state("keep", 2);
      g.mount("x");
      g.derived("x::d", ["m"], id);
      return g;
    };
    const s = await storeWith(build, [
      { ...none, nodesRemoved: [{ path: "m", deps: [] }] },
      { ...none, subgraphsRemoved: ["x"] },
    ]);
    const g = build();
    const result = await restoreSnapshot(g, s);
    expect(g.paths()).toEqual(["keep"]);
    expect(g.mounts()).toEqual([]);
    expect(result.phases[0]).toEqual({ lifecycle: "spec", frames: 2 });
  });

  it("remove x, then unmount u, dependencies crossing u both ways", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.mount("u");
      g.state("u::y", 1);
      g.derived("x", ["u::y"], id);
      g.derived("u::z", ["x"], id);
      return g;
    };
    const s = await storeWith(build, [
      { ...none, nodesRemoved: [{ path: "x", deps: ["u::y"] }] },
      { ...none, subgraphsRemoved: ["u"] },
    ]);
    const g = build();
    await restoreSnapshot(g, s);
    expect(g.snapshot()).toEqual(createGraph("g").snapshot());
  });

  it("a refusal that is not a removal still fails the phase, rolled back", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("m", 1);
      g.mount("x");
      g.derived("x::d", ["m"], id);
      return g;
    };
    const s = await storeWith(build, [
      { ...none, nodesRemoved: [{ path: "m", deps: [] }] },
      { ...none, subgraphsAdded: ["nope::child"] },
    ]);
    const g = build();
    const before = g.snapshot();
    const err = await restoreSnapshot(g, s).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("phase-failed");
    expect(g.snapshot()).toEqual(before);
  });

  it("a phase applied as its net result (a removed path re-added) still fails on a frame the graph refuses", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("a", 1);
      g.derived("d", ["a"], id);
      return g;
    };
    const slice = { type: "derived" as const, deps: ["a"], status: "settled" as const, meta: {}, value: [1] };
    const s = await storeWith(build, [
      { ...none, nodesRemoved: [{ path: "d", deps: ["a"] }] },
      { ...none, nodesAdded: [{ path: "d", slice }], subgraphsAdded: ["nope::child"] },
    ]);
    const g = build();
    const before = g.snapshot();
    const err = await restoreSnapshot(g, s).then(() => undefined, (e: unknown) => e);
    expect((err as RestoreError).code).toBe("phase-failed");
    expect(g.snapshot()).toEqual(before);
  });
});
