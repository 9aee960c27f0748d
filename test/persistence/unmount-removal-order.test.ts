/**
 * A wave that unmounts a mount holding a node which depends on a node the wave also removes must replay. Node
 * removes were always written before unmounts, so `graph.remove m` came before `graph.unmount x` while the
 * code-built x::d still depended on m: RestoreError phase-failed on every restore (and every follower) until a
 * compaction folded the frames. Dependencies crossing the mount both ways had no replayable order at all.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import {
  attachSnapshotStorage,
  createGraph,
  decomposeDiffToFrames,
  foldWal,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphSnapshotDiff,
  type JsonValue,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

const id = (v: JsonValue): JsonValue => [v];
const kinds = (frames: readonly WALFrame[]): string[] =>
  frames.map((f) => `${(f.change.change as { kind: string }).kind} ${f.path}`);

/** Runs `wave` on the graph `build` makes with storage attached; restores into a second one; both snapshots. */
async function roundTrip(build: () => ReactiveGraph, wave: (g: ReactiveGraph) => void) {
  const backend = memoryBackend();
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
  const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
  const g = build();
  const h = attachSnapshotStorage(g, [{ snapshot, wal }], { compactEvery: Number.POSITIVE_INFINITY });
  g.batch(() => wave(g));
  await h.flush();
  const live = g.snapshot();
  await h.dispose();
  const frames = (await Promise.all((await wal.list("g/wal/")).map((k) => wal.load(k)))) as WALFrame[];
  const restored = build();
  await restoreSnapshot(restored, { snapshot, wal });
  const fold = foldWal((await snapshot.load("g")) as GraphCheckpointRecord, frames).snapshot;
  return { live, restored: restored.snapshot(), fold, frames: frames.sort((a, b) => a.frame_seq - b.frame_seq) };
}

describe("removals and unmounts of one wave replay in dependency order", () => {
  it("unmounts a mount holding a dependent before removing the node it depends on", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("m", 1);
      g.mount("x");
      g.derived("x::d", ["m"], id);
      return g;
    };
    const r = await roundTrip(build, (g) => {
      g.unmount("x");
      g.remove("m");
    });
    expect(kinds(r.frames)).toEqual(["graph.unmount x", "graph.remove m"]);
    expect(r.restored).toEqual(r.live);
    expect(r.fold.nodes).toEqual(r.live.nodes);
  });

  it("replays dependencies that cross an unmounted mount both ways", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.mount("u");
      g.state("u::y", 1);
      g.derived("x", ["u::y"], id);
      g.derived("u::z", ["x"], id);
      g.derived("u::w", ["u::z"], id); // a dependent of a node that needs its own frame needs one too
      return g;
    };
    const r = await roundTrip(build, (g) => {
      g.remove("u::w");
      g.remove("u::z");
      g.remove("x");
      g.unmount("u");
    });
    expect(kinds(r.frames)).toEqual(["graph.remove u::w", "graph.remove u::z", "graph.remove x", "graph.unmount u"]);
    expect(r.restored).toEqual(r.live);
  });

  it("keeps the order when the removed dep is replaced in the same wave (before the adds)", () => {
    const state = (value: JsonValue, meta: Record<string, JsonValue> = {}) => ({ type: "state" as const, deps: [], status: "settled" as const, meta, value });
    const diff: GraphSnapshotDiff = {
      nodesAdded: [{ path: "m", slice: state(2, { unit: "kg" }) }],
      nodesRemoved: [
        { path: "m", deps: [] },
        { path: "x::d", deps: ["m"] },
        { path: "x::e", deps: ["x::d"] },
        { path: "x::s", deps: [] },
      ],
      subgraphsAdded: [],
      subgraphsRemoved: ["x"],
      valuesChanged: [],
    };
    const frames = decomposeDiffToFrames(diff, { timestampNs: 0, baseSeq: 0 }) as WALFrame[];
    expect(kinds(frames)).toEqual(["graph.unmount x", "graph.remove m", "graph.add m"]);
  });

  it("replays two unmounts each holding a dependent of the other's nodes", async () => {
    const build = (): ReactiveGraph => {
      const g = createGraph("g");
      g.mount("u");
      g.mount("v");
      g.state("u::a", 1);
      g.state("v::a", 2);
      g.derived("u::b", ["v::a"], id);
      g.derived("v::b", ["u::a"], id);
      g.derived("v::c", ["v::b"], id);
      g.state("v::s", 3);
      return g;
    };
    const r = await roundTrip(build, (g) => {
      g.remove("u::b");
      g.unmount("v");
      g.unmount("u");
    });
    expect(kinds(r.frames)).toEqual(["graph.remove u::b", "graph.remove v::c", "graph.remove v::b", "graph.unmount v", "graph.unmount u"]);
    expect(r.restored).toEqual(r.live);
  });

  it("an unmount in no cycle carries all its nodes: one frame for a large mount", () => {
    const nodesRemoved = [{ path: "m", deps: [] as string[] }];
    for (let i = 0; i < 1000; i++) nodesRemoved.push({ path: `u::n${i}`, deps: [i === 0 ? "m" : `u::n${i - 1}`] });
    const frames = decomposeDiffToFrames(
      { nodesAdded: [], nodesRemoved, subgraphsAdded: [], subgraphsRemoved: ["u"], valuesChanged: [] },
      { timestampNs: 0, baseSeq: 0 },
    ) as WALFrame[];
    expect(kinds(frames)).toEqual(["graph.unmount u", "graph.remove m"]);
  });
});
