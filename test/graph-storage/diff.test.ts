import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decomposeDiffToFrames, diffSnapshots, createGraph } from "../../src/index.js";
import type { GraphPersistSnapshot, GraphSnapshotDiff, SnapshotNodeSlice } from "../../src/index.js";
import { canonicalWalFrameBody, verifyWalFrameChecksum, type WALFrame } from "../../src/wal/index.js";
import { frameColumns } from "../../src/wal/frame-columns.js";

interface VectorCase {
  name: string;
  body: Omit<WALFrame, "checksum" | "format_version">;
  canonical: string;
  sha256: string;
}
const vectors = JSON.parse(
  readFileSync(new URL("../vectors/wal-checksums.json", import.meta.url), "utf8"),
) as { cases: VectorCase[] };
const vector = (name: string): VectorCase => {
  const c = vectors.cases.find((v) => v.name === name);
  if (c === undefined) throw new Error(`vector ${name} missing`);
  return c;
};

const state = (value?: unknown): SnapshotNodeSlice =>
  value === undefined
    ? { type: "state", deps: [], status: "sentinel", meta: {}, sentinel: true }
    : { type: "state", deps: [], status: "settled", meta: {}, value: value as number };

function snap(nodes: Record<string, SnapshotNodeSlice>, subgraphs: string[] = []): GraphPersistSnapshot {
  return { name: "g", nodes, edges: [], subgraphs, version: 1 };
}

const empty: GraphSnapshotDiff = { nodesAdded: [], nodesRemoved: [], subgraphsAdded: [], subgraphsRemoved: [], valuesChanged: [] };

describe("decomposeDiffToFrames reproduces the graph-frame checksum vectors", () => {
  const cases: Array<[string, GraphPersistSnapshot, GraphPersistSnapshot, number, number]> = [
    ["node-set-n-1", snap({ n: state(0) }), snap({ n: state(1) }), 1, 0],
    ["node-set-x-2-seq6", snap({ x: state(1) }), snap({ x: state(2) }), 2000, 5],
    ["node-invalidate-x", snap({ x: state(1) }), snap({ x: state() }), 2000, 0],
    ["graph-mount-child", snap({}), snap({}, ["child"]), 1000, 0],
    ["graph-unmount-child", snap({}, ["child"]), snap({}), 2000, 0],
    ["graph-remove-x", snap({ x: state(1) }), snap({}), 1000, 0],
  ];
  for (const [name, a, b, timestampNs, baseSeq] of cases) {
    it(name, () => {
      const frames = decomposeDiffToFrames(diffSnapshots(a, b), { timestampNs, baseSeq });
      expect(frames).toHaveLength(1);
      const frame = frames[0] as WALFrame;
      const v = vector(name);
      expect(canonicalWalFrameBody(frame)).toBe(v.canonical);
      expect(frame.checksum).toBe(v.sha256);
      expect(frame.format_version).toBe(1);
      expect(verifyWalFrameChecksum(frame)).toBe(true);
    });
  }

  it("graph-add-no-slice is a foreign frame shape (t_ns differs from frame_t_ns, no slice) that still verifies", () => {
    const v = vector("graph-add-no-slice");
    expect(verifyWalFrameChecksum({ ...v.body, checksum: v.sha256, format_version: 1 })).toBe(true);
  });

  it("seal: false leaves the checksum for the tier codec", () => {
    const frames = decomposeDiffToFrames(diffSnapshots(snap({ n: state(0) }), snap({ n: state(1) })), {
      timestampNs: 1,
      baseSeq: 0,
      seal: false,
    });
    expect(frames[0]?.checksum).toBe("");
    expect(canonicalWalFrameBody(frames[0] as WALFrame)).toBe(vector("node-set-n-1").canonical);
  });
});

describe("diffSnapshots", () => {
  it("finds adds, removes, value changes, sentinel transitions and mounts; ignores status-only changes", () => {
    const a = snap({ keep: state(1), gone: state(2), inv: state(3), same: state(4) }, ["m"]);
    const b = snap(
      { keep: state(10), inv: state(), same: { ...state(4), status: "resolved" }, "n::x": state(5) },
      ["n"],
    );
    const d = diffSnapshots(a, b);
    expect(d.nodesAdded).toEqual([{ path: "n::x", slice: state(5) }]);
    expect(d.nodesRemoved).toEqual([{ path: "gone", deps: [] }]);
    expect([...d.valuesChanged].sort((x, y) => (x.path < y.path ? -1 : 1))).toEqual([{ path: "inv" }, { path: "keep", value: 10 }]);
    expect(d.subgraphsAdded).toEqual(["n"]);
    expect(d.subgraphsRemoved).toEqual(["m"]);
  });

  it("treats a type or meta change at the same path as a remove plus an add", () => {
    const derived: SnapshotNodeSlice = { type: "derived", deps: ["a"], status: "settled", meta: {}, value: 1 };
    const d = diffSnapshots(
      snap({ a: state(1), d: derived, m: state(1) }),
      snap({ a: state(1), d: state(1), m: { ...state(1), meta: { unit: "s" } } }),
    );
    expect(d.nodesAdded.map((x) => x.path).sort()).toEqual(["d", "m"]);
    expect(d.nodesRemoved).toEqual([
      { path: "d", deps: ["a"] },
      { path: "m", deps: [] },
    ]);
    expect(d.valuesChanged).toEqual([]);
  });

  it("rejects non-snapshots with a TypeError", () => {
    expect(() => diffSnapshots({} as GraphPersistSnapshot, snap({}))).toThrow(TypeError);
  });
});

describe("frame order within one diff", () => {
  const kinds = (frames: WALFrame[]): string[] =>
    frames.map((f) => `${(f.change.change as { kind: string }).kind} ${f.path}`);

  it("mounts parents first, adds sorted by code point, removes, unmounts children first, then values", () => {
    const diff: GraphSnapshotDiff = {
      nodesAdded: [
        { path: "b::x", slice: state(1) },
        { path: "10", slice: state(1) },
        { path: "9", slice: state(1) },
      ],
      nodesRemoved: [{ path: "old", deps: [] }],
      subgraphsAdded: ["b::c", "b"],
      subgraphsRemoved: ["z", "y", "y::w"],
      valuesChanged: [{ path: "v2", value: 2 }, { path: "10x" }, { path: "v1", value: 1 }],
    };
    const frames = decomposeDiffToFrames(diff, { timestampNs: 5, baseSeq: 7 });
    expect(kinds(frames)).toEqual([
      "graph.mount b",
      "graph.mount b::c",
      "graph.add 10",
      "graph.add 9",
      "graph.add b::x",
      "graph.remove old",
      "graph.unmount z",
      "graph.unmount y",
      "node.invalidate 10x",
      "node.set v1",
      "node.set v2",
    ]);
    expect(frames.map((f) => f.frame_seq)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(new Set(frames.map((f) => f.frame_t_ns))).toEqual(new Set([5]));
    expect(frames.every((f) => f.change.t_ns === 5 && f.change.version === 1 && f.change.seq === undefined)).toBe(true);
    expect(frames.every(verifyWalFrameChecksum)).toBe(true);
  });

  it("sorts astral characters by code point, not UTF-16 unit", () => {
    const frames = decomposeDiffToFrames(
      { ...empty, valuesChanged: [{ path: "\u{1F600}", value: 1 }, { path: "\uFF61", value: 2 }] },
      { timestampNs: 0, baseSeq: 0 },
    );
    expect(frames.map((f) => f.path)).toEqual(["\uFF61", "\u{1F600}"]);
  });

  it("removes dependents before their deps and leaves nodes under an unmounted mount to the unmount", () => {
    const frames = decomposeDiffToFrames(
      {
        ...empty,
        nodesRemoved: [
          { path: "a", deps: [] },
          { path: "b", deps: ["a"] },
          { path: "c", deps: ["b", "a"] },
          { path: "m::x", deps: [] },
        ],
        subgraphsRemoved: ["m", "m::n"],
      },
      { timestampNs: 0, baseSeq: 0 },
    );
    expect(kinds(frames)).toEqual(["graph.remove c", "graph.remove b", "graph.remove a", "graph.unmount m"]);
  });

  it("frees a path before it is reused by the other kind (node <-> mount)", () => {
    const frames = decomposeDiffToFrames(
      {
        ...empty,
        nodesAdded: [{ path: "m", slice: state(1) }],
        nodesRemoved: [
          { path: "n", deps: [] },
          { path: "dep", deps: ["n"] },
          { path: "other", deps: [] },
        ],
        subgraphsAdded: ["n"],
        subgraphsRemoved: ["m"],
      },
      { timestampNs: 0, baseSeq: 0 },
    );
    expect(kinds(frames)).toEqual([
      "graph.remove dep",
      "graph.remove n",
      "graph.unmount m",
      "graph.mount n",
      "graph.add m",
      "graph.remove other",
    ]);
  });

  it("removes a replaced node (and its removed dependents) before re-adding it", () => {
    const frames = decomposeDiffToFrames(
      {
        ...empty,
        nodesAdded: [{ path: "sum", slice: state(1) }],
        nodesRemoved: [
          { path: "sum", deps: ["a"] },
          { path: "pair", deps: ["sum"] },
          { path: "zz", deps: [] },
        ],
      },
      { timestampNs: 0, baseSeq: 0 },
    );
    expect(kinds(frames)).toEqual(["graph.remove pair", "graph.remove sum", "graph.add sum", "graph.remove zz"]);
  });

  it("validates its options", () => {
    expect(() => decomposeDiffToFrames(empty, { timestampNs: -1, baseSeq: 0 })).toThrow(RangeError);
    expect(() => decomposeDiffToFrames(empty, { timestampNs: 0, baseSeq: 1.5 })).toThrow(RangeError);
    expect(decomposeDiffToFrames(empty, { timestampNs: 0, baseSeq: 0 })).toEqual([]);
  });

  it("diffs two live snapshots of the in-project graph", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.derived("d", ["a"], (a) => (a as number) * 2);
    const before = g.snapshot();
    g.batch(() => {
      g.set("a", 5);
      g.mount("m");
      g.addState("m::x", 1);
    });
    const frames = decomposeDiffToFrames(diffSnapshots(before, g.snapshot()), { timestampNs: 1, baseSeq: 1 });
    expect(kinds(frames)).toEqual(["graph.mount m", "graph.add m::x", "node.set a", "node.set d"]);
  });
});

describe("attach's frames fit the WAL frame columns", () => {
  // Every frame attach hands an engine tier must fit frameColumns (else it crosses whole, several times slower,
  // and nothing else would notice): value sets, invalidations, adds, removes, mounts, sealed or not.
  it("every frame decomposeDiffToFrames builds is taken by frameColumns.push, and comes back from at() as built", () => {
    const a = snap({ n: state(0), x: state(1), gone: state(2) }, ["old"]);
    const b = snap({ n: state(1), x: state(), added: state(3) }, ["child"]);
    for (const seal of [false, true]) {
      const frames = decomposeDiffToFrames(diffSnapshots(a, b), { timestampNs: 1_796_286_893_845_000_000, baseSeq: 7, seal });
      expect(frames.length).toBeGreaterThan(4);
      const cols = frameColumns.empty();
      for (const f of frames) expect(frameColumns.push(cols, f as WALFrame)).toBe(true);
      frames.forEach((f, i) => expect(frameColumns.at(cols, i)).toStrictEqual(f));
    }
  });
});
