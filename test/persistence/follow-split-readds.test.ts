/**
 * A follower replays each poll's frames as one phase; restore replays every frame above the baseline as one. A
 * code-built node (derived) that one wave removes and a later wave re-adds as it was: restore replays the removal
 * with the re-add (its net result keeps the node the code built), but a follower whose poll fell between the waves
 * removed it alone, and no replay brings a derived node back. Before the fix the follower's graph lacked it from
 * then on (a derived node re-added, a mount unmounted and built again, a state node re-added with other meta under
 * a dependent removed and re-added with it), unlike restore's at the same frame and the writer's. Now a poll applies
 * its frames only up to the last wave end where every code-built node they removed is back, for at most
 * `holdRemovalPolls` polls (default DEFAULT_HOLD_REMOVAL_POLLS). Each case checks, at every poll, the follower's graph against restoreSnapshot of the
 * same store at the frame the follower reports. Real SQLite file: an inline writer, a read-only follower.
 */
import { afterEach, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type FollowOptions, type GraphFollower, type ReactiveGraph } from "../../src/index.js";
import { DEFAULT_HOLD_REMOVAL_POLLS } from "../../src/persistence/follow.js";
import { inlinePair } from "../graph-compaction/fixtures.js";
import {
  build,
  buildX,
  mountX,
  readdBC,
  readdC,
  removeBC,
  removeC,
  setA,
  unmountX,
  waveWriter,
  type Wave,
} from "./fixtures/follow-graph.js";
import { sqliteWriter } from "./fixtures/sqlite-writer.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


/** A writer (inline SQLite, waves stored at once) and, once `before` is stored, a follower polled by hand. */
async function setup(before: Wave[] = [], opts: FollowOptions = {}) {
  const live = build();
  const { handle, reader } = sqliteWriter("follow-split-readds", live, cleanups);
  const write = waveWriter(live, handle); // setA and removeC in one millisecond: one wave, both held
  await handle.flush();
  for (const wave of before) await write(wave);
  const graph = build();
  const errors: Error[] = [];
  const follower = await followGraph(graph, inlinePair(reader), { pollMs: 3_600_000, onError: (e) => errors.push(e), ...opts });
  cleanups.push(() => follower.stop());
  /** The follower's graph equals what restore gives of the same store at the frame the follower reports. */
  const expectRestoreEqual = async (): Promise<void> => {
    const restored = build();
    await restoreSnapshot(restored, { ...inlinePair(reader), targetSeq: follower.lag().appliedSeq });
    expect(graph.snapshot()).toEqual(restored.snapshot());
  };
  return { live, write, graph, follower, errors, expectRestoreEqual, source: inlinePair(reader) };
}

async function pollOk(follower: GraphFollower): Promise<void> {
  await follower.poll();
  expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined });
}

it.each<[string, Wave[]]>([
  ["a derived node removed, then re-added as it was", [removeC, readdC]],
  ["a mount unmounted, then mounted and built again in one wave", [unmountX, (g) => g.batch(() => (mountX(g), buildX(g)))]],
  ["a mount unmounted, mounted, then built again, each read by a poll of its own", [unmountX, mountX, buildX]],
  ["a state node and its dependent removed, then re-added with other meta", [removeBC, readdBC]],
  ["a derived node removed, another wave, then re-added", [removeC, setA, readdC]],
])("%s, the waves read in polls of their own: the follower's graph is restore's at each poll", async (_, waves) => {
  const { live, write, graph, follower, errors, expectRestoreEqual } = await setup();
  for (const wave of waves) {
    await write(wave);
    await pollOk(follower);
    await expectRestoreEqual();
  }
  // Every wave applied once the re-add was read: the follower shows the writer's graph.
  expect(follower.lag().frames).toBe(0);
  expect(graph.snapshot()).toEqual(live.snapshot());
  expect(errors).toEqual([]);
});

it("a follower whose initial restore ends in a removal waits for the re-add too", async () => {
  const { live, write, graph, follower, errors, expectRestoreEqual } = await setup([setA, removeC]);
  await expectRestoreEqual();
  expect(graph.kindOf("c")).toBe("derived"); // held: the store's last wave removed it, a re-add may follow
  expect(graph.get("a")).toBe(7); // the waves before it applied
  await write(readdC);
  await pollOk(follower);
  await expectRestoreEqual();
  expect(graph.snapshot()).toEqual(live.snapshot());
  expect(errors).toEqual([]);
});

it(`a removal never re-added is applied after ${DEFAULT_HOLD_REMOVAL_POLLS} polls, the waves after it with it`, async () => {
  const { live, write, graph, follower, errors, expectRestoreEqual } = await setup();
  await write(removeC);
  await pollOk(follower);
  await write(setA);
  let heldPolls = 0;
  while (follower.lag().frames > 0) {
    await expectRestoreEqual();
    expect(graph.kindOf("c")).toBe("derived");
    expect(heldPolls++).toBeLessThan(DEFAULT_HOLD_REMOVAL_POLLS);
    await pollOk(follower);
  }
  expect(heldPolls).toBe(DEFAULT_HOLD_REMOVAL_POLLS);
  await expectRestoreEqual();
  expect(graph.kindOf("c")).toBeUndefined();
  expect(graph.snapshot()).toEqual(live.snapshot());
  expect(errors).toEqual([]);
});

it("holdRemovalPolls 0 applies a removal at once; bad values are refused", async () => {
  const { live, write, graph, follower, errors, expectRestoreEqual, source } = await setup([], { holdRemovalPolls: 0 });
  await write(removeC);
  await pollOk(follower);
  expect(follower.lag().frames).toBe(0);
  expect(graph.kindOf("c")).toBeUndefined();
  await expectRestoreEqual();
  expect(graph.snapshot()).toEqual(live.snapshot());
  expect(errors).toEqual([]);
  for (const holdRemovalPolls of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    await expect(followGraph(build(), source, { holdRemovalPolls })).rejects.toThrow(RangeError);
  }
});
