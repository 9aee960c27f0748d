/**
 * A stored derived node the restoring code cannot give (design §3.9, "Restore is exact"). Replay builds state nodes
 * only: a derived or effect node is the code's. The writer removed c and re-added it as a derived node on other deps
 * (or added a derived node the code does not build): restore kept the code's c (deps [a, b]) silently, and when the
 * writer had also removed b, brought b back with its old value (the code's c still depended on it), with or without
 * a compaction between. Now restore fails with RestoreError `derived-mismatch` (details: path, frame_seq, stored,
 * built) before the graph is touched, also from a baseline a compaction folded the re-add into; code that builds
 * what the writer had restores it exactly, and a mismatch a later frame undoes is no error. A follower fails the same
 * way. Real stores: a SQLite file written inline (compactGraph), and one through an engine (compactGraphInEngine).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createGraph, followGraph, restoreSnapshot, RestoreError, type ReactiveGraph } from "../../src/index.js";
import { build, pair, readdC, removeC, same, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("restore-derived-mismatch", cleanups);

const readdCOnA: Wave = (g) => void g.derived("c", ["a"], same);
const removeB: Wave = (g) => g.remove("b");
const addE: Wave = (g) => void g.derived("e", ["a"], same);

/** build() with c on [a] alone: the code that builds what the writer has after readdCOnA. */
function buildCOnA(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 1);
  g.state("b", 2);
  g.derived("c", ["a"], same);
  g.mount("x");
  g.state("x::s", 3);
  g.derived("x::d", ["x::s"], same);
  return g;
}

/** build() plus e on [a]: the code that builds what the writer has after addE. */
function buildWithE(): ReactiveGraph {
  const g = build();
  g.derived("e", ["a"], same);
  return g;
}

/** Where a compaction runs: none, after the waves before the re-add, after every wave. */
const compactions = ["no compaction", "compaction before the re-add", "compaction after the re-add"] as const;

describe.each(stores)("%s", (_, store) => {
  /** The writer's graph attached to a new store, its baseline stored. */
  async function setup() {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    return { ...s, live, write: waveWriter(live, s.handle) };
  }

  /** Restores a graph `make` builds; the error restore threw (undefined when none) and the graph. */
  async function restoreWith(make: () => ReactiveGraph, tiers: FollowPair, targetSeq?: number) {
    const graph = make();
    try {
      const result = await restoreSnapshot(graph, { ...tiers, ...(targetSeq === undefined ? {} : { targetSeq }) });
      return { graph, error: undefined, finalSeq: result.finalSeq };
    } catch (err) {
      return { graph, error: err, finalSeq: undefined };
    }
  }

  /** Runs `before`, maybe a compaction, `readd`, maybe a compaction; the seq that stored c's re-add (or the baseline's). */
  async function writeReAdd(where: (typeof compactions)[number], before: Wave[], readd: Wave, code: () => ReactiveGraph) {
    const s = await setup();
    for (const w of before) await s.write(w);
    if (where === "compaction before the re-add") await s.compact();
    await s.write(readd);
    const exact = await restoreWith(code, s.reader()); // the code that builds what the writer has
    expect(exact.error).toBeUndefined();
    expect(exact.graph.snapshot()).toEqual(s.live.snapshot());
    let seq = exact.finalSeq as number; // the re-add is the last frame
    if (where === "compaction after the re-add") seq = (await s.compact()).baselineSeq;
    return { ...s, seq };
  }

  it.each(compactions)("c re-added on other deps (%s): restore fails derived-mismatch, the graph untouched", async (where) => {
    const { live, reader, seq } = await writeReAdd(where, [removeC], readdCOnA, buildCOnA);
    const { graph, error } = await restoreWith(build, reader());
    expect(error).toBeInstanceOf(RestoreError);
    expect(error).toMatchObject({
      code: "derived-mismatch",
      details: {
        path: "c",
        frame_seq: seq,
        stored: { type: "derived", deps: ["a"], meta: {} },
        built: { type: "derived", deps: ["a", "b"], meta: {} },
      },
    });
    expect(graph.snapshot()).toEqual(build().snapshot());
    // The code that builds c on [a] restores the writer's graph from the same store.
    expect((await restoreWith(buildCOnA, reader())).graph.snapshot()).toEqual(live.snapshot());
  });

  it.each(compactions)("b and c removed, c re-added on a (%s): no b brought back, restore fails derived-mismatch", async (where) => {
    const { live, reader, seq } = await writeReAdd(where, [removeC, removeB], readdCOnA, buildCOnA);
    expect(live.kindOf("b")).toBeUndefined();
    const { graph, error } = await restoreWith(build, reader());
    expect(error).toMatchObject({ code: "derived-mismatch", details: { path: "c", frame_seq: seq } });
    expect(graph.snapshot()).toEqual(build().snapshot());
    const exact = await restoreWith(buildCOnA, reader());
    expect(exact.graph.kindOf("b")).toBeUndefined();
    expect(exact.graph.snapshot()).toEqual(live.snapshot());
  });

  it.each(compactions)("a derived node the code does not build (%s): restore fails derived-mismatch", async (where) => {
    const { live, reader, seq } = await writeReAdd(where, [], addE, buildWithE);
    const { graph, error } = await restoreWith(build, reader());
    expect(error).toMatchObject({
      code: "derived-mismatch",
      details: { path: "e", frame_seq: seq, stored: { type: "derived", deps: ["a"] }, built: undefined },
    });
    expect(graph.snapshot()).toEqual(build().snapshot());
    expect(live.kindOf("e")).toBe("derived");
  });

  it("a mismatch a later frame undoes: restore at the end is exact, at the re-add on other deps it fails", async () => {
    const { live, write, reader } = await setup();
    await write(removeC);
    await write(readdCOnA);
    const atOtherDeps = (await restoreWith(buildCOnA, reader())).finalSeq as number;
    await write(removeC);
    await write(readdC);
    await write((g) => g.set("b", 5));
    const end = await restoreWith(build, reader());
    expect(end.error).toBeUndefined();
    expect(end.graph.snapshot()).toEqual(live.snapshot());
    expect(end.graph.get("c")).toEqual(pair(1, 5));
    const mid = await restoreWith(build, reader(), atOtherDeps);
    expect(mid.error).toMatchObject({ code: "derived-mismatch", details: { path: "c", frame_seq: atOtherDeps } });
  });

  it("a follower reading c's re-add on other deps fails derived-mismatch; one started after it fails to start", async () => {
    const { write, reader, compact } = await setup();
    const graph = build();
    const errors: Array<[unknown, boolean]> = [];
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, onError: (e, fatal) => errors.push([e, fatal]) });
    cleanups.push(() => follower.stop());
    await write(removeC);
    await write(readdCOnA);
    await expect(follower.poll()).rejects.toMatchObject({ code: "derived-mismatch", details: { path: "c" } });
    expect(follower.stats().state).toBe("failed");
    expect(errors).toEqual([[expect.objectContaining({ code: "derived-mismatch" }), true]]);
    expect(graph.snapshot()).toEqual(build().snapshot()); // the failed poll changed nothing
    await compact();
    await expect(followGraph(build(), reader(), { pollMs: 3_600_000 })).rejects.toMatchObject({ code: "derived-mismatch" });
  });
});
