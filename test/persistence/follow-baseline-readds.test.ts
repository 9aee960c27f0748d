/**
 * A removal folded into a baseline, its re-add a frame above it (design §3.9). The writer removes a derived node
 * (or unmounts a mount holding one), a compaction folds that wave into the baseline, then the writer re-adds it as
 * the code builds it. Restore applied the baseline (the node removed: the baseline lacks it) and could not build it
 * from the re-add's frame, so a restore after the compaction lacked the node that a restore before it (removal and
 * re-add in one phase), and the writer, had; a follower loading that baseline (its first restore, or a reload after
 * the compaction folded frames it held) lacked it too. Now a baseline keeps the code-built nodes it lacks that a
 * frame replayed after it adds again, a follower's load applies its frames up to those adds at least, and a reload
 * whose baseline drops a node the follower holds waits for the re-add up to holdRemovalPolls polls. Real stores: a
 * SQLite file written inline (compactGraph), and a SQLite store through an engine (compactGraphInEngine).
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import { build, mountBuildX, readdBC, readdC, removeBC, removeC, setA, unmountX, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("follow-baseline-readds", cleanups);

/** [case, the removal folded into the baseline, the waves after the compaction (the re-add among them)] */
const cases: ReadonlyArray<[string, Wave, Wave[]]> = [
  ["a derived node removed, re-added", removeC, [readdC]],
  ["a mount holding a derived node unmounted, built again", unmountX, [mountBuildX]],
  ["a state node and its dependent removed, re-added with other meta", removeBC, [readdBC]],
  ["a derived node removed, another wave, re-added, another wave", removeC, [setA, readdC, (g) => g.set("b", 9)]],
];

describe.each(stores)("%s", (_, store) => {
  async function setup() {
    const live = build();
    const { handle, reader, compact } = store(live);
    await handle.flush();
    const write = waveWriter(live, handle);
    const restoreTiers = reader();
    const restored = async (targetSeq?: number): Promise<ReactiveGraph> => {
      const g = build();
      await restoreSnapshot(g, { ...restoreTiers, ...(targetSeq === undefined ? {} : { targetSeq }) });
      return g;
    };
    return { live, write, reader, compact, restored };
  }

  it.each(cases)("%s: restore after the compaction equals the writer's graph", async (_, removal, after) => {
    const { live, write, compact, restored } = await setup();
    await write(removal);
    await compact();
    for (const wave of after) await write(wave);
    expect((await restored()).snapshot()).toEqual(live.snapshot());
  });

  it.each(cases)("%s: a follower holding the removal when it is folded reloads to the writer's graph", async (_, removal, after) => {
    const { live, write, reader, compact, restored } = await setup();
    const graph = build();
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, holdRemovalPolls: 5 });
    cleanups.push(() => follower.stop());
    await write(removal);
    await follower.poll();
    expect(follower.lag().frames).toBeGreaterThan(0); // held
    const { baselineSeq } = await compact();
    for (const wave of after) {
      await write(wave);
      await follower.poll();
      const { appliedSeq, frames } = follower.lag();
      if (appliedSeq < baselineSeq) {
        // The reload waits for the re-add: the follower stays where it was (restore cannot go below the baseline).
        expect(frames).toBeGreaterThan(0);
        expect(graph.kindOf("c") ?? graph.kindOf("x::d")).toBe("derived");
        continue;
      }
      expect(graph.snapshot(), `at ${appliedSeq}`).toEqual((await restored(appliedSeq)).snapshot());
    }
    expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined, frames: 0 });
    expect(follower.stats().reloads).toBeGreaterThan(0);
    expect(graph.snapshot()).toEqual(live.snapshot());
  });

  it.each(cases)("%s: a follower started after the re-add restores the writer's graph", async (_, removal, after) => {
    const { live, write, reader, compact } = await setup();
    await write(removal);
    await compact();
    for (const wave of after) await write(wave);
    const graph = build();
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    expect(follower.lag().frames).toBe(0);
    expect(graph.snapshot()).toEqual(live.snapshot());
  });

  it.each([0, 1, 3])("holdRemovalPolls %i: a reload whose baseline dropped a held node never re-added applies after that many polls", async (hold) => {
    const { live, write, reader, compact, restored } = await setup();
    const graph = build();
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, holdRemovalPolls: hold });
    cleanups.push(() => follower.stop());
    await write(removeC);
    await follower.poll();
    expect(follower.lag().frames).toBe(hold === 0 ? 0 : 1);
    const { baselineSeq } = await compact();
    let waited = 0;
    for (;;) {
      await write((g) => g.set("a", 10 + waited));
      await follower.poll();
      if (follower.lag().appliedSeq >= baselineSeq) break;
      expect(graph.kindOf("c")).toBe("derived");
      expect(++waited).toBeLessThanOrEqual(hold);
    }
    expect(waited).toBe(hold === 0 ? 0 : hold);
    expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined, frames: 0 });
    expect(graph.snapshot()).toEqual((await restored(follower.lag().appliedSeq)).snapshot());
    expect(graph.snapshot()).toEqual(live.snapshot());
  });

  it("a reload waits while a removal above the baseline is held before the re-add it needs", async () => {
    const { live, write, reader, compact, restored } = await setup();
    const graph = build();
    const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, holdRemovalPolls: 5 });
    cleanups.push(() => follower.stop());
    await write(removeC);
    await follower.poll(); // held
    const { baselineSeq } = await compact(); // the baseline lacks c
    await write(unmountX); // held in turn: x::d re-added below
    await write(readdC); // what the baseline dropped is back
    await follower.poll();
    expect(follower.lag().appliedSeq).toBeLessThan(baselineSeq); // waits: applied now, x's unmount would lose x::d
    expect(graph.kindOf("x::d")).toBe("derived");
    await write(mountBuildX);
    await follower.poll();
    expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined, frames: 0 });
    expect(graph.snapshot()).toEqual((await restored(follower.lag().appliedSeq)).snapshot());
    expect(graph.snapshot()).toEqual(live.snapshot());
  });
});
