/**
 * Attach's mirror builds each periodic baseline from the path order and edges it kept since the last one, rebuilt
 * only when a node was added or removed or a re-added node changed its deps, and weighs the baseline in the same pass
 * (docs/design.md §3.18, issue 13). These tests hold that cache to the graph: after every kind of change the mirror's
 * baseline equals `graph.snapshot()` and its weight equals `snapshotBytes` of it, and so does the baseline attach
 * stores (ratio cadence and an explicit compactEvery).
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { attachSnapshotStorage, createGraph, type GraphCheckpointRecord, type ReactiveGraph } from "../../src/index.js";
import { SnapshotMirror } from "../../src/persistence/diff.js";
import { snapshotBytes } from "../../src/persistence/size-estimate.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/index.js";

/** Every kind of change the cached order and edges must follow, each a wave (or one batch) of its own. */
const steps: Array<[string, (g: ReactiveGraph) => void]> = [
  ["values only", (g) => ["b", "c", "a"].forEach((p, i) => g.set(p, i * 10))],
  ["a state node that sorts first", (g) => g.state("A", 1)],
  ["a derived node (new edges)", (g) => g.derived("d", ["a", "b"], (a, b) => [a, b])],
  ["a dep of it changes (no topology)", (g) => g.set("a", 99)],
  ["the derived re-added with other deps (one wave)", (g) => g.batch(() => {
    g.remove("d");
    g.derived("d", ["c"], (c) => c);
  })],
  ["the derived made a state node (its deps dropped)", (g) => g.replaceState("d", "plain")],
  ["a mount with nodes and an edge across it", (g) => {
    g.mount("m");
    g.state("m::x", 1);
    g.derived("m::y", ["m::x", "c"], (x, c) => [x, c]);
  }],
  ["a node removed", (g) => g.remove("A")],
  ["the mount removed", (g) => g.unmount("m")],
  ["values again", (g) => g.set("b", { deep: [1, 2, 3] })],
];

function build(): ReactiveGraph {
  const g = createGraph("g");
  for (const p of ["a", "b", "c"]) g.state(p, 0);
  return g;
}

describe("attach's mirror: baselines from the kept path order and edges", () => {
  it("equals graph.snapshot() and weighs as snapshotBytes after every kind of change", () => {
    const g = build();
    const mirror = new SnapshotMirror(g.snapshot());
    // The mirror follows the graph's waves as attach's hot and gated paths feed it.
    g.observe((wave) => {
      const nodes = new Set<string>([...wave.signals.map((s) => s.path), ...wave.topology.filter((t) => t.op === "add" || t.op === "remove").map((t) => t.path)]);
      const mounts = new Set(wave.topology.filter((t) => t.op !== "add" && t.op !== "remove").map((t) => t.path));
      mirror.update(g, nodes, mounts);
    });
    for (const [what, step] of steps) {
      step(g);
      for (let twice = 0; twice < 2; twice++) {
        // The second build reuses what the first one kept.
        const { snapshot, bytes } = mirror.snapshotWithBytes("g");
        expect(snapshot, what).toEqual(g.snapshot());
        expect(mirror.snapshot("g"), what).toEqual(g.snapshot());
        expect(bytes, what).toBe(snapshotBytes(snapshot));
      }
    }
  });

  it("gives each baseline edge objects of its own", () => {
    const g = build();
    g.derived("d", ["a"], (a) => a);
    const mirror = new SnapshotMirror(g.snapshot());
    const first = mirror.snapshot("g");
    const second = mirror.snapshot("g");
    expect(second.edges).toEqual([{ from: "a", to: "d" }]);
    expect(second.edges[0]).not.toBe(first.edges[0]);
    (first.edges[0] as { from: string }).from = "changed by a tier";
    expect(mirror.snapshot("g").edges).toEqual([{ from: "a", to: "d" }]);
  });

  for (const [cadence, opts] of [
    ["ratio cadence (weighed as built)", { baselineRatio: 1e-9 }],
    ["explicit compactEvery (not weighed)", { compactEvery: 1 }],
  ] as const) {
    it(`stores baselines equal to the live graph: ${cadence}`, async () => {
      const backend = memoryBackend();
      const inner = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
      let baselines = 0;
      const snapshot = Object.assign(Object.create(inner) as SnapshotStorageTier<GraphCheckpointRecord>, {
        save(record: GraphCheckpointRecord) {
          baselines++;
          inner.save(record);
        },
      });
      const g = build();
      const handle = attachSnapshotStorage(g, [{ snapshot, wal: kvStorage(backend, { name: "wal", codec: walFrameCodec }) }], opts);
      await handle.flush();
      for (const [what, step] of steps) {
        const before = baselines;
        step(g);
        await handle.flush();
        expect(baselines, what).toBeGreaterThan(before); // every step ends with a baseline of the mirror
        const stored = (await inner.load("g")) as GraphCheckpointRecord;
        expect(stored.snapshot, what).toEqual(g.snapshot());
      }
      await handle.dispose();
    });
  }
});
