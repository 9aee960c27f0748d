/**
 * A follower tails the waves of review s13c F3 and F4 (an unmount taking a dependent of a removed node; a node
 * replaced under a dependent that stays): each poll replays them, and the follower's graph equals the writer's.
 * Before, the follower stopped with RestoreError phase-failed at the first of them.
 */
import { afterEach, expect, it } from "vitest";
import { createGraph, followGraph, type JsonValue, type ReactiveGraph } from "../../src/index.js";
import { DEFAULT_HOLD_REMOVAL_POLLS } from "../../src/persistence/follow.js";
import { inlinePair } from "../graph-compaction/fixtures.js";
import { sqliteWriter } from "./fixtures/sqlite-writer.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pair = (a: JsonValue, b: JsonValue): JsonValue => [a, b];
function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 1);
  g.state("b", 2);
  g.derived("c", ["a", "b"], pair);
  g.state("m", 3);
  g.mount("x");
  g.derived("x::d", ["m"], (v) => v);
  return g;
}

it("a follower replays removals ordered by dependency and a node replaced under a dependent", async () => {
  const live = build();
  const { handle, reader } = sqliteWriter("follow-replay-order", live, cleanups);
  await handle.flush();
  const graph = build();
  const follower = await followGraph(graph, inlinePair(reader), { pollMs: 3_600_000 });
  cleanups.push(() => follower.stop());

  live.batch(() => {
    live.unmount("x");
    live.remove("m");
  });
  await handle.flush();
  // The wave removes a derived node (x::d): the follower holds it for a re-add for up to holdRemovalPolls polls
  // (design §3.9), then applies it.
  await follower.poll();
  for (let i = 0; follower.lag().frames > 0 && i < DEFAULT_HOLD_REMOVAL_POLLS; i++) await follower.poll();
  expect(follower.lag().frames).toBe(0);
  expect(graph.snapshot()).toEqual(live.snapshot());

  live.batch(() => {
    live.remove("c");
    live.remove("b");
    live.addState("b", 5, { unit: "kg" });
    live.derived("c", ["a", "b"], pair);
  });
  await handle.flush();
  await follower.poll();
  expect(graph.snapshot()).toEqual(live.snapshot());
  expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined });
});
