/**
 * Where a follower's graph still differs from restore's and the writer's (design §3.9): it has no code to build a
 * derived node with, so a removal it applied without the node's re-add stays applied. Two ways in: the removal's
 * hold ran out before the writer re-added the node, or the follower started after a compaction folded the removal
 * (its initial restore applies the baseline at once) and before the re-add. Either way the follower goes on without
 * an error, lacks exactly that node, and equals the writer in everything else; restore at the same frame, from a
 * freshly built graph, has the node; a new follower has it. These cases pin that limit down: a change that lifts it
 * must change them.
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type GraphFollower, type ReactiveGraph } from "../../src/index.js";
import { build, readdC, removeC, setA, waveWriter } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function follow(reader: () => FollowPair, holdRemovalPolls: number): Promise<{ graph: ReactiveGraph; follower: GraphFollower }> {
  const graph = build();
  const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, holdRemovalPolls });
  cleanups.push(() => follower.stop());
  return { graph, follower };
}

/** The follower lacks c and only c; restore at its frame and a new follower have the writer's graph. */
async function expectOnlyCMissing(live: ReactiveGraph, graph: ReactiveGraph, follower: GraphFollower, reader: () => FollowPair): Promise<void> {
  expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined, frames: 0 });
  expect(graph.kindOf("c")).toBeUndefined();
  const { c, ...others } = live.snapshot().nodes;
  expect(c?.type).toBe("derived");
  expect(graph.snapshot().nodes).toEqual(others);
  const restored = build();
  await restoreSnapshot(restored, { ...reader(), targetSeq: follower.lag().appliedSeq });
  expect(restored.snapshot()).toEqual(live.snapshot());
  const fresh = await follow(reader, 2);
  expect(fresh.graph.snapshot()).toEqual(live.snapshot());
}

describe.each(followStores("follow-limits", cleanups))("%s", (_, store) => {
  it("a re-add written after the removal's hold ran out finds the node gone", async () => {
    const live = build();
    const { handle, reader } = store(live);
    await handle.flush();
    const write = waveWriter(live, handle);
    const { graph, follower } = await follow(reader, 2);
    await write(removeC);
    await follower.poll(); // read: held
    await follower.poll();
    expect(graph.kindOf("c")).toBe("derived");
    await follower.poll(); // 2 polls: applied without its re-add
    expect(follower.lag().frames).toBe(0);
    expect(graph.kindOf("c")).toBeUndefined();
    await write(readdC);
    await follower.poll();
    await expectOnlyCMissing(live, graph, follower, reader);
  });

  it("a follower started between a compaction that folded the removal and the re-add finds the node gone", async () => {
    const live = build();
    const { handle, reader, compact } = store(live);
    await handle.flush();
    const write = waveWriter(live, handle);
    await write(removeC);
    await compact();
    await write(setA);
    const { graph, follower } = await follow(reader, 2);
    expect(graph.kindOf("c")).toBeUndefined(); // the baseline lacks it, no frame re-adds it: restore's graph too
    await write(readdC);
    await follower.poll();
    await expectOnlyCMissing(live, graph, follower, reader);
  });
});
