/**
 * A derived node the code built, removed in one wave and re-added as it was (same deps, meta) in a later one, was
 * missing after restore: replay removed it, then ignored its `graph.add` (only state nodes are created from
 * frames), while the live graph, the fold and a restore after compaction all have it. The same for a mount
 * unmounted and mounted again with the code's derived nodes inside.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import {
  attachSnapshotStorage,
  createGraph,
  foldWal,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type JsonValue,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

const sum = (a: JsonValue, b: JsonValue): JsonValue => (a as number) + (b as number);

async function roundTrip(build: () => ReactiveGraph, waves: (g: ReactiveGraph) => void) {
  const backend = memoryBackend();
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
  const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
  const g = build();
  const h = attachSnapshotStorage(g, [{ snapshot, wal }], { compactEvery: Number.POSITIVE_INFINITY });
  waves(g);
  await h.flush();
  const live = g.snapshot();
  await h.dispose();
  const frames = (await Promise.all((await wal.list("g/wal/")).map((k) => wal.load(k)))) as WALFrame[];
  const fold = foldWal((await snapshot.load("g")) as GraphCheckpointRecord, frames).snapshot;
  const r = build();
  const result = await restoreSnapshot(r, { snapshot, wal });
  return { live, fold, restored: r.snapshot(), result };
}

describe("a code-built derived node removed and re-added as it was", () => {
  it("is kept by restore (node)", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("a", 1);
      g.state("b", 2);
      g.derived("sum", ["a", "b"], sum);
      return g;
    };
    const r = await roundTrip(build, (g) => {
      g.remove("sum"); // e.g. a feature toggled off ...
      g.set("b", 5);
      g.derived("sum", ["a", "b"], sum); // ... and on again, by the same code
      g.set("a", 10);
    });
    expect(r.live.nodes.sum?.value).toBe(15);
    expect(r.fold.nodes.sum).toEqual(r.live.nodes.sum);
    expect(r.restored).toEqual(r.live);
    expect(r.result.phases.map((p) => p.lifecycle)).toEqual(["spec", "data", "ownership"]);
  });

  it("is kept by restore (a mount unmounted and mounted again, its state re-added)", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("a", 1);
      g.mount("m");
      g.state("m::s", 2);
      g.derived("m::d", ["a", "m::s"], sum);
      g.state("m::gone", 0);
      return g;
    };
    const r = await roundTrip(build, (g) => {
      g.unmount("m");
      g.set("a", 3);
      g.batch(() => {
        g.mount("m");
        g.state("m::s", 7);
        g.derived("m::d", ["a", "m::s"], sum);
      });
    });
    expect(r.live.nodes["m::d"]?.value).toBe(10);
    expect(r.live.nodes["m::gone"]).toBeUndefined();
    expect(r.restored).toEqual(r.live);
  });
});
