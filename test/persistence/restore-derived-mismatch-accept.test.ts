/**
 * A new version of the code on an older store (design §3.9, "Code changes"): restore refuses a stored derived node
 * the code builds otherwise or lacks (RestoreError `derived-mismatch`, its message naming the option), and with
 * `codeChanges: "accept"` restores the store's state values exactly, keeps the code's derived nodes (on other
 * deps, one the store lacks) and lists every difference in RestoreResult.codeChanges, including a state node the
 * writer removed that the code's derived node still depends on. A follower's initial load refuses a stored derived
 * node its code lacks as restore does, and follows with "accept". Real stores: a SQLite file written inline, and
 * one through an engine; each case with and without a compaction folding the frames into the baseline.
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, RestoreError, type ReactiveGraph } from "../../src/index.js";
import { build, pair, removeC, same, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("restore-code-changes", cleanups);

/** The next version of build()'s code: c on [a] alone, x::d gone, e on [a, b] new. */
function buildUpgraded(): ReactiveGraph {
  const g = buildWithoutD();
  g.remove("c");
  g.derived("c", ["a"], same);
  g.derived("e", ["a", "b"], pair);
  return g;
}

/** build() without x::d: a derived node the store holds and the code no longer builds. */
function buildWithoutD(): ReactiveGraph {
  const g = build();
  g.remove("x::d");
  return g;
}

/** The state slices of a snapshot (values and meta): what restore takes from the store. */
function stateOf(g: ReactiveGraph) {
  return Object.fromEntries(Object.entries(g.snapshot().nodes).filter(([, s]) => s.type === "state"));
}

const sets: Wave = (g) => g.batch(() => (g.set("a", 5), g.set("b", 6), g.set("x::s", 7)));
const removeB: Wave = (g) => g.remove("b");

describe.each(stores)("%s", (_, store) => {
  /** The old code's writer after `waves`, maybe compacted; its store's readers. */
  async function written(waves: Wave[], compact: boolean) {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    const write = waveWriter(live, s.handle);
    for (const w of waves) await write(w);
    if (compact) await s.compact();
    return { live, reader: s.reader, write };
  }

  async function restoreWith(graph: ReactiveGraph, tiers: FollowPair, codeChanges?: "refuse" | "accept") {
    try {
      return { result: await restoreSnapshot(graph, { ...tiers, ...(codeChanges === undefined ? {} : { codeChanges }) }), error: undefined };
    } catch (err) {
      return { result: undefined, error: err };
    }
  }

  it.each([false, true])("upgraded code, compacted %s: default refuses naming the option; accept restores the values and lists c, x::d, e", async (compact) => {
    const { live, reader } = await written([sets], compact);
    for (const codeChanges of [undefined, "refuse"] as const) {
      const graph = buildUpgraded();
      const { error } = await restoreWith(graph, reader(), codeChanges);
      expect(error).toBeInstanceOf(RestoreError);
      expect(error).toMatchObject({ code: "derived-mismatch", details: { path: "c" } });
      expect((error as Error).message).toContain('codeChanges: "accept"');
      expect(graph.snapshot()).toEqual(buildUpgraded().snapshot()); // untouched
    }
    const graph = buildUpgraded();
    const { result, error } = await restoreWith(graph, reader(), "accept");
    expect(error).toBeUndefined();
    expect(stateOf(graph)).toEqual(stateOf(live));
    expect(graph.describeNode("c")).toMatchObject({ type: "derived", deps: ["a"] });
    expect(graph.get("c")).toBe(5);
    expect(graph.kindOf("x::d")).toBeUndefined();
    expect(graph.get("e")).toEqual(pair(5, 6)); // the code's new node, kept, on the store's values
    const seq = result?.finalSeq;
    expect(result?.codeChanges).toEqual([
      {
        path: "c",
        frame_seq: compact ? seq : expect.any(Number),
        stored: { type: "derived", deps: ["a", "b"], meta: {} },
        built: { type: "derived", deps: ["a"], meta: {} },
      },
      { path: "e", frame_seq: undefined, stored: undefined, built: { type: "derived", deps: ["a", "b"], meta: {} } },
      { path: "x::d", frame_seq: expect.any(Number), stored: { type: "derived", deps: ["x::s"], meta: {} }, built: undefined },
    ]);
  });

  it.each([false, true])("a derived node the code no longer builds, compacted %s: refused by default, accepted and listed", async (compact) => {
    const { live, reader } = await written([sets], compact);
    const refused = await restoreWith(buildWithoutD(), reader());
    expect(refused.error).toMatchObject({ code: "derived-mismatch", details: { path: "x::d", built: undefined } });
    const graph = buildWithoutD();
    const { result } = await restoreWith(graph, reader(), "accept");
    expect(stateOf(graph)).toEqual(stateOf(live));
    expect(graph.kindOf("x::d")).toBeUndefined();
    expect(graph.get("c")).toEqual(pair(5, 6));
    expect(result?.codeChanges).toEqual([
      { path: "x::d", frame_seq: expect.any(Number), stored: { type: "derived", deps: ["x::s"], meta: {} }, built: undefined },
    ]);
  });

  it.each([false, true])("the writer removed b and c, the code builds c on [a, b] (compacted %s): accept brings b back, listed with c", async (compact) => {
    const { live, reader } = await written([sets, removeC, removeB], compact);
    expect(live.kindOf("b")).toBeUndefined();
    // The same code: the writer's graph lacks c, which restore removes (exact): no code change.
    const same = await restoreWith(build(), reader());
    expect(same.error).toBeUndefined();
    const graph = build();
    const { result, error } = await restoreWith(graph, reader(), "accept");
    expect(error).toBeUndefined();
    expect(graph.kindOf("c")).toBe("derived");
    expect(graph.get("a")).toBe(5);
    expect(graph.get("x::s")).toBe(7);
    expect(result?.codeChanges).toEqual([
      { path: "b", frame_seq: undefined, stored: undefined, built: { type: "state", deps: [], meta: {} }, keptFor: ["c"] },
      { path: "c", frame_seq: undefined, stored: undefined, built: { type: "derived", deps: ["a", "b"], meta: {} } },
    ]);
  });

  it("accept with nothing changed lists nothing and equals the default", async () => {
    const { live, reader } = await written([sets], false);
    const graph = build();
    const { result } = await restoreWith(graph, reader(), "accept");
    expect(result?.codeChanges).toEqual([]);
    expect(graph.snapshot()).toEqual(live.snapshot());
  });

  it("a follower's initial load refuses a stored derived node its code lacks; with accept it starts and follows", async () => {
    const { live, reader, write } = await written([sets], false);
    await expect(followGraph(buildWithoutD(), reader(), { pollMs: 3_600_000 })).rejects.toMatchObject({
      code: "derived-mismatch",
      details: { path: "x::d", built: undefined },
    });
    const graph = buildUpgraded();
    const errors: unknown[] = [];
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, codeChanges: "accept", onError: (e) => errors.push(e) });
    cleanups.push(() => follower.stop());
    expect(stateOf(graph)).toEqual(stateOf(live));
    expect(graph.get("e")).toEqual(pair(5, 6));
    await write((g) => g.set("a", 9)); // the writer goes on: its next waves reach the upgraded follower
    await follower.poll();
    expect(stateOf(graph)).toEqual(stateOf(live));
    expect(graph.get("e")).toEqual(pair(9, 6));
    expect(graph.get("c")).toBe(9);
    expect(errors).toEqual([]);
  });

  it("codeChanges is validated: restoreSnapshot and followGraph throw TypeError naming the option", async () => {
    const { reader } = await written([], false);
    expect((await restoreSnapshot(build(), { ...reader(), codeChanges: "refuse" })).codeChanges).toBeUndefined();
    for (const bad of ["Accept", true, 1, null]) {
      await expect(restoreSnapshot(build(), { ...reader(), codeChanges: bad as never })).rejects.toThrow(TypeError);
      await expect(restoreSnapshot(build(), { ...reader(), codeChanges: bad as never })).rejects.toThrow(/codeChanges/);
      await expect(followGraph(build(), reader(), { codeChanges: bad as never })).rejects.toThrow(/codeChanges/);
    }
  });
});
