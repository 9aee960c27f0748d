/**
 * attach observes the built-in graph through `observeUnfrozen` (docs/design.md §3.38): its listener gets each wave as
 * the graph's core built it, while every public listener still gets a frozen copy of the same wave. A root view's
 * shared slices list their deps in one frozen array per node. What must hold: public listeners see exactly what they
 * saw before (frozen, same content, nested waves in order), attach persists exactly the graph's state, and a copied
 * slice is still the caller's own.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphWave,
  type ReactiveGraph,
} from "../../src/index.js";
import { observeUnfrozen } from "../../src/graph/graph.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

function tiers(): {
  snapshot: ReturnType<typeof snapshotStorage<GraphCheckpointRecord>>;
  wal: ReturnType<typeof kvStorage<WALFrame>>;
} {
  const backend = memoryBackend();
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
  };
}

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", { v: 0 });
  g.state("b", 0);
  g.derived("d", ["a", "b"], (a, b) => ({ sum: (a as { v: number }).v + (b as number) }));
  return g;
}

/** A wave's content as plain data (what a listener can read). */
const plain = (w: GraphWave): unknown => ({
  seq: w.seq,
  signals: w.signals.map((s) => ({ path: s.path, signal: s.signal })),
  topology: w.topology.map((t) => ({ op: t.op, path: t.path })),
  cause: w.cause,
});

describe("attach's unfrozen waves", () => {
  it("public listeners still get frozen waves, the same ones as with no attach, nested waves included", async () => {
    const run = async (attach: boolean): Promise<{ waves: GraphWave[]; state: unknown }> => {
      const g = build();
      const s = tiers();
      const handle = attach ? attachSnapshotStorage(g, [s]) : undefined;
      const waves: GraphWave[] = [];
      g.observe((w) => {
        waves.push(w);
        // A write from a listener: its wave is queued and delivered after this one.
        if (w.seq === 1) g.set("b", 5);
      });
      g.set("a", { v: 1 });
      g.batch(() => {
        g.set("a", { v: 2 });
        g.state("c", "new");
      });
      g.remove("c");
      g.set("b", 5); // equal: a resolved signal, nothing persisted
      g.invalidate("a");
      await handle?.flush();
      await handle?.dispose();
      return { waves, state: g.snapshot() };
    };
    const bare = await run(false);
    const attached = await run(true);
    expect(attached.waves.map(plain)).toStrictEqual(bare.waves.map(plain));
    expect(attached.waves.length).toBeGreaterThanOrEqual(5);
    for (const w of attached.waves) {
      expect(Object.isFrozen(w) && Object.isFrozen(w.signals) && Object.isFrozen(w.topology)).toBe(true);
      for (const s of w.signals) expect(Object.isFrozen(s)).toBe(true);
      for (const t of w.topology) expect(Object.isFrozen(t)).toBe(true);
    }
    // A public listener cannot change what attach reads (its copy is frozen).
    const first = attached.waves[0] as GraphWave;
    expect(() => (first.signals as unknown as Array<{ path: string }>).push({ path: "x" })).toThrow(TypeError);
    expect(attached.state).toStrictEqual(bare.state);
  });

  it("attach persists exactly the graph's state through unfrozen waves (restore into a fresh graph)", async () => {
    const g = build();
    const s = tiers();
    const handle = attachSnapshotStorage(g, [s]);
    const seen: GraphWave[] = [];
    g.observe((w) => seen.push(w));
    for (let i = 1; i <= 50; i++) {
      if (i % 7 === 0) {
        g.batch(() => {
          g.set("a", { v: i });
          g.set("b", i);
        });
      } else if (i % 11 === 0) g.invalidate("b");
      else g.set(i % 2 === 0 ? "a" : "b", i % 2 === 0 ? { v: i } : i);
      if (i === 20) g.state(`late`, { at: i });
      if (i === 30) g.set("late", { at: i });
    }
    await handle.flush();
    await handle.dispose();
    expect(seen.length).toBeGreaterThan(40);
    const r = build();
    r.state("late", null);
    await restoreSnapshot(r, { snapshot: s.snapshot, wal: s.wal });
    expect(r.snapshot()).toStrictEqual(g.snapshot());
  });

  it("an unfrozen listener gets the core's wave, equal to the frozen copy; a view under a mount gets its scoped copy", () => {
    const g = build();
    g.mount("sub");
    const sub = g.subgraph("sub");
    sub.state("x", 1);
    const raw: unknown[] = [];
    const rawFrozen: boolean[] = [];
    const copies: GraphWave[] = [];
    const scoped: GraphWave[] = [];
    const off = (g as unknown as Record<typeof observeUnfrozen, (fn: (w: GraphWave) => void) => () => void>)[observeUnfrozen]((w) => {
      raw.push(plain(w));
      rawFrozen.push(Object.isFrozen(w));
    });
    g.observe((w) => copies.push(w));
    (sub as unknown as Record<typeof observeUnfrozen, (fn: (w: GraphWave) => void) => () => void>)[observeUnfrozen]((w) => scoped.push(w));
    g.set("a", { v: 3 });
    sub.set("x", 2);
    off();
    g.set("b", 9);
    expect(raw).toStrictEqual(copies.slice(0, 2).map(plain));
    expect(rawFrozen).toStrictEqual([false, false]);
    expect(copies).toHaveLength(3);
    expect(scoped.map(plain)).toStrictEqual([{ seq: copies[1]?.seq, signals: [{ path: "x", signal: "data" }], topology: [], cause: "user" }]);
    expect(Object.isFrozen(scoped[0])).toBe(true);
  });

  it("a root view's shared slice lists its deps in one frozen array; a copied slice and a mounted view's are their own", () => {
    const g = build();
    const shared = g.describeNode("d", "shared");
    expect(shared?.deps).toStrictEqual(["a", "b"]);
    expect(Object.isFrozen(shared?.deps)).toBe(true);
    expect(g.describeNode("d", "shared")?.deps).toBe(shared?.deps);
    g.set("a", { v: 4 });
    expect(g.describeNode("d", "shared")?.deps).toBe(shared?.deps);
    const copy = g.describeNode("d");
    expect(copy?.deps).toStrictEqual(["a", "b"]);
    expect(Object.isFrozen(copy?.deps)).toBe(false);
    copy?.deps.push("z");
    expect(g.describeNode("d", "shared")?.deps).toStrictEqual(["a", "b"]);
    g.mount("m");
    const m = g.subgraph("m");
    m.state("p", 1);
    m.derived("q", ["p"], (p) => p);
    const inner = m.describeNode("q", "shared");
    expect(inner?.deps).toStrictEqual(["p"]);
    expect(Object.isFrozen(inner?.deps)).toBe(false);
    expect(g.describeNode("m::q", "shared")?.deps).toStrictEqual(["m::p"]);
    // A state node that replaced another keeps the path its dependents list.
    g.replaceState("a", { v: 7 });
    expect(g.describeNode("d", "shared")?.deps).toStrictEqual(["a", "b"]);
    expect(g.describeNode("d")?.deps).toStrictEqual(["a", "b"]);
  });
});
