/**
 * A code-built node the baseline holds as a state node, made derived again above it (design §3.9, "Restore is
 * exact"): the writer removed c and added it as a state node, a compaction folded that into the baseline, then the
 * writer removed c and re-added it as the code builds it (derived on [a, b]). Restore applied the baseline first,
 * which replaced the code's c with the state node, and replay cannot build a derived node: the restored c stayed a
 * state node while the writer's (and the store's) was derived. Found by restore-derived-mismatch.property (seed
 * 537956098, path "34:7:10:11:13"). Now the baseline keeps the code's c when a frame above re-adds it as code-built,
 * as it does for a node the baseline lacks. A follower's initial load gives the same graph. Real stores: a SQLite
 * file written inline (compactGraph), and one through an engine (compactGraphInEngine).
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import { build, pair, readdC, removeC, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("restore-state-then-derived", cleanups);

const addStateC: Wave = (g) => void g.addState("c", 0);

/** Where a compaction runs: none, between the state c and the re-add (the case that failed), after the re-add. */
const compactions = ["no compaction", "compaction before the re-add", "compaction after the re-add"] as const;

describe.each(stores)("%s", (_, store) => {
  /** The writer's waves on a new store, with a compaction where `where` says; fresh read tiers on each reader(). */
  async function written(where: (typeof compactions)[number]): Promise<{ live: ReactiveGraph; reader: () => FollowPair }> {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    const write = waveWriter(live, s.handle);
    await write(removeC);
    await write(addStateC);
    if (where === "compaction before the re-add") await s.compact();
    await write(removeC);
    await write(readdC);
    if (where === "compaction after the re-add") await s.compact();
    expect(live.describeNode("c")).toMatchObject({ type: "derived", deps: ["a", "b"] });
    return { live, reader: () => s.reader() };
  }

  it.each(compactions)("c state, then derived as the code builds it (%s): restore gives the derived c", async (where) => {
    const { live, reader } = await written(where);
    const graph = build();
    const result = await restoreSnapshot(graph, reader());
    expect(graph.describeNode("c")).toMatchObject({ type: "derived", deps: ["a", "b"] });
    expect(graph.get("c")).toEqual(pair(1, 2));
    expect(graph.snapshot()).toEqual(live.snapshot());
    // With codeChanges "accept" nothing differs from the code, so nothing is listed.
    const accepting = build();
    const accepted = await restoreSnapshot(accepting, { ...reader(), codeChanges: "accept" });
    expect(accepting.snapshot()).toEqual(live.snapshot());
    expect(accepted.codeChanges).toEqual([]);
    expect(result.finalSeq).toBe(accepted.finalSeq);
  });

  it.each(compactions)("c state, then derived as the code builds it (%s): a follower loads the derived c", async (where) => {
    const { live, reader } = await written(where);
    const graph = build();
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    expect(follower.stats().state).toBe("following");
    expect(graph.snapshot()).toEqual(live.snapshot());
  });
});
