/**
 * Where a follower's graph still differs from restore's and the writer's (design §3.9): it has no code to build a
 * derived node with, so a removal it applied without the node's re-add stays applied. Two ways in: the removal's
 * hold ran out before the writer re-added the node, or the follower started after a compaction folded the removal
 * (its initial restore applies the baseline at once) and before the re-add. Either way the follower lacks exactly
 * that node and equals the writer in everything else; restore at the same frame, from a freshly built graph, has the
 * node; a new follower has it. The follower reports it, once: onError hears RestoreError `follow-diverged` (not
 * fatal) naming c and the re-add's seq, stats().diverged holds it, and it goes on following (before, nothing was
 * reported). These cases pin that limit down: a change that lifts it must change them.
 */
import { afterEach, describe, expect, it } from "vitest";
import { followGraph, restoreSnapshot, RestoreError, type GraphFollower, type ReactiveGraph } from "../../src/index.js";
import { build, readdC, removeC, setA, waveWriter } from "./fixtures/follow-graph.js";
import { followStores, type FollowPair, type FollowStore } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Followed {
  graph: ReactiveGraph;
  follower: GraphFollower;
  /** What onError heard, with its fatal flag. */
  errors: Array<[Error, boolean]>;
}

async function follow(reader: () => FollowPair, holdRemovalPolls: number): Promise<Followed> {
  const graph = build();
  const errors: Array<[Error, boolean]> = [];
  const onError = (e: Error, fatal: boolean): void => void errors.push([e, fatal]);
  const follower = await followGraph(graph, reader(), { pollMs: 3_600_000, holdRemovalPolls, onError });
  cleanups.push(() => follower.stop());
  return { graph, follower, errors };
}

/**
 * The follower lacks c and only c, and said so once (follow-diverged naming c, at a seq above `before`, the seq
 * stored before the writer re-added c); restore at its frame and a new follower have the writer's graph.
 */
async function expectOnlyCMissing(live: ReactiveGraph, { graph, follower, errors }: Followed, reader: () => FollowPair, before: number): Promise<void> {
  expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined, frames: 0 });
  expect(errors).toHaveLength(1);
  const [error, fatal] = errors[0] as [Error, boolean];
  expect(fatal).toBe(false);
  expect(error).toBeInstanceOf(RestoreError);
  expect(error).toMatchObject({ code: "follow-diverged", details: { graphName: "g", paths: ["c"] } });
  const seq = (error as RestoreError).details.seq as number;
  expect(seq).toBeGreaterThan(before);
  expect(seq).toBeLessThanOrEqual(follower.lag().appliedSeq);
  expect(follower.stats().diverged).toBe(error);
  await follower.poll(); // reported once
  expect(errors).toHaveLength(1);
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

/** A writer on a new store, its first flush stored. */
async function writer(store: (live: ReactiveGraph) => FollowStore) {
  const live = build();
  const { handle, reader, compact } = store(live);
  await handle.flush();
  return { live, reader, compact, write: waveWriter(live, handle) };
}

/**
 * A follower (hold `hold`) that read the writer's removal of c, held it, and applied it alone when the hold ran out
 * (restore at that frame lacks c too: nothing reported yet).
 */
async function followPastRemoval(w: Awaited<ReturnType<typeof writer>>, hold: number): Promise<Followed> {
  const followed = await follow(w.reader, hold);
  const { graph, follower } = followed;
  await w.write(removeC);
  for (let p = 0; p < hold; p++) {
    await follower.poll(); // read: held
    expect(graph.kindOf("c")).toBe("derived");
  }
  await follower.poll(); // `hold` polls: applied without its re-add
  expect(follower.lag().frames).toBe(0);
  expect(graph.kindOf("c")).toBeUndefined();
  expect(followed.errors).toEqual([]);
  expect(follower.stats().diverged).toBeUndefined();
  return followed;
}

describe.each(followStores("follow-limits", cleanups))("%s", (_, store) => {
  it("a re-add written after the removal's hold ran out finds the node gone", async () => {
    const w = await writer(store);
    const followed = await followPastRemoval(w, 2);
    const before = followed.follower.lag().storedSeq;
    await w.write(readdC);
    await followed.follower.poll();
    await expectOnlyCMissing(w.live, followed, w.reader, before);
  });

  it("a re-add a compaction folded before the follower read it, after the removal's hold ran out, finds the node gone", async () => {
    const w = await writer(store);
    const followed = await followPastRemoval(w, 1);
    const before = followed.follower.lag().storedSeq;
    await w.write(readdC);
    await w.compact(); // the baseline holds c: the follower reloads it and still cannot build c
    await followed.follower.poll();
    expect(followed.follower.stats().reloads).toBe(1);
    await expectOnlyCMissing(w.live, followed, w.reader, before);
  });

  it("a follower started between a compaction that folded the removal and the re-add finds the node gone", async () => {
    const w = await writer(store);
    await w.write(removeC);
    await w.compact();
    await w.write(setA);
    const followed = await follow(w.reader, 2);
    expect(followed.graph.kindOf("c")).toBeUndefined(); // the baseline lacks it, no frame re-adds it: restore's graph too
    expect(followed.follower.stats().diverged).toBeUndefined();
    const before = followed.follower.lag().storedSeq;
    await w.write(readdC);
    await followed.follower.poll();
    await expectOnlyCMissing(w.live, followed, w.reader, before);
  });
});
