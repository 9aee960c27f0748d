/**
 * A follower with `codeChanges: "accept"` (a new version of the code following an older writer, design §3.9) lists
 * the code changes its graph holds, as restore does: stats().codeChanges equals RestoreResult.codeChanges of a
 * restore with "accept" at the follower's seq, after its initial load and after each poll applying the writer's
 * waves (a derived node re-added on the old deps, a derived node the code lacks, a state node removed that the
 * code's derived node depends on). Without "accept" stats() has no codeChanges. Real stores: a SQLite file written
 * inline, and one through an engine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import { build, pair, same, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("follow-code-changes", cleanups);

/** The next version of build()'s code: c on [a] alone, x::d gone, e on [a, b] new. */
function buildUpgraded(): ReactiveGraph {
  const g = build();
  g.remove("x::d");
  g.remove("c");
  g.derived("c", ["a"], same);
  g.derived("e", ["a", "b"], pair);
  return g;
}

const sets: Wave = (g) => g.batch(() => (g.set("a", 5), g.set("b", 6), g.set("x::s", 7)));
const removeC: Wave = (g) => g.remove("c");
const readdC: Wave = (g) => void g.derived("c", ["a", "b"], pair);
const addF: Wave = (g) => void g.derived("f", ["a"], same);
const removeBC: Wave = (g) => g.batch(() => (g.remove("c"), g.remove("b")));

describe.each(stores)("%s", (_, store) => {
  async function restoredChanges(reader: () => FollowPair) {
    const result = await restoreSnapshot(buildUpgraded(), { ...reader(), codeChanges: "accept" });
    return result.codeChanges;
  }

  it("stats().codeChanges is what restore with accept lists at the follower's seq, after its load and each poll", async () => {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    const write = waveWriter(live, s.handle);
    await write(sets);
    const errors: Error[] = [];
    const graph = buildUpgraded();
    const follower = await followGraph(graph, s.reader(), {
      pollMs: 3_600_000,
      codeChanges: "accept",
      holdRemovalPolls: 0,
      onError: (e) => errors.push(e),
    });
    cleanups.push(() => follower.stop());
    const first = follower.stats().codeChanges;
    expect(first?.map((c) => c.path)).toEqual(["c", "e", "x::d"]);
    expect(first).toEqual(await restoredChanges(s.reader));
    for (const wave of [removeC, readdC, addF, removeBC]) {
      await write(wave);
      const lag = await follower.poll();
      expect(lag.frames).toBe(0);
      expect(follower.stats().codeChanges).toEqual(await restoredChanges(s.reader));
    }
    // The last waves: f is listed (the code lacks it), b kept for e (the writer removed it), c the code's on [a].
    const last = follower.stats().codeChanges ?? [];
    expect(last.map((c) => c.path)).toEqual(["b", "c", "e", "f", "x::d"]);
    expect(last.find((c) => c.path === "b")).toMatchObject({ stored: undefined, keptFor: ["e"] });
    expect(last.find((c) => c.path === "f")).toMatchObject({ built: undefined, stored: { type: "derived", deps: ["a"] } });
    expect(errors).toEqual([]);
  });

  it("without accept, stats() has no codeChanges", async () => {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    const follower = await followGraph(build(), s.reader(), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    expect(follower.stats()).not.toHaveProperty("codeChanges");
  });
});
