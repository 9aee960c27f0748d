/**
 * A follower whose baseline and WAL live in different stores (attach takes such pairs; followGraph any
 * { snapshot, wal }) must see a new writer that attached with its own state and stayed quiet. Such a writer stores
 * only a baseline (a seq no frame has) in the snapshot store and, with compactEvery Infinity and nothing to reclaim,
 * nothing in the WAL store. Before, a poll skipped whenever the WAL tier's change counter had not moved, so after 20
 * polls the follower still showed the old writer's state (review s12a F3); on one store the counter moves and the
 * follower reloads (the control). Now a poll the WAL's counter would skip reads the baseline's head every
 * IDLE_BASELINE_POLLS polls, or asks the snapshot tier's own counter when it has one. Two real SQLite files.
 */
import { afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { IDLE_BASELINE_POLLS, followGraph, type FollowSource } from "../../src/persistence/follow.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage, snapshotStorage } from "../../src/tier/index.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { buildGraph, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pairOf = (snap: StorageBackend, wal: StorageBackend) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(snap),
  wal: kvStorage<WALFrame>(wal, { codec: walFrameCodec }),
});

type Layout = "one store" | "two stores";
/** The reader's snapshot tier: built in (no change counter), or given its store's counter. */
type Counter = "no snapshot counter" | "a snapshot counter";

/**
 * A first writer with 5 waves, a follower on read-only handles that caught up with it, then a second writer of its
 * own state attached on the same stores, quiet after its attach. `heads` counts the reader's loadHead calls.
 */
async function newQuietWriter(layout: Layout, counter: Counter) {
  const tmp = tempDir("follow-split");
  const x = tmp.path("x.db");
  const y = layout === "two stores" ? tmp.path("y.db") : x;
  const wx = sqliteBackend(x);
  const wy = y === x ? wx : sqliteBackend(y);
  const rx = sqliteBackend(x, { readOnly: true });
  const ry = y === x ? rx : sqliteBackend(y, { readOnly: true });
  cleanups.push(() => {
    for (const b of new Set([wx, wy, rx, ry])) b.close();
    tmp.remove();
  });
  const first = buildGraph();
  const h1 = attachSnapshotStorage(first, [pairOf(wx, wy)], { compactEvery: Number.POSITIVE_INFINITY });
  const random = rng(42);
  for (let i = 0; i < 5; i++) randomWave(first, random);
  await h1.flush();

  const plain = pairOf(rx, ry);
  let heads = 0;
  const snapshotCounter = kvStorage(rx);
  const source: FollowSource = {
    wal: plain.wal,
    snapshot: Object.assign(Object.create(plain.snapshot) as FollowSource["snapshot"], {
      loadHead: (key?: string) => (heads++, plain.snapshot.loadHead!(key)),
      ...(counter === "a snapshot counter" && { changeCounter: () => snapshotCounter.changeCounter!() }),
    }),
  };
  const replica = buildGraph();
  const follower = await followGraph(replica, source, { pollMs: 3_600_000 });
  cleanups.push(() => follower.stop());
  for (let i = 0; i < 3; i++) await follower.poll();
  expect(replica.snapshot()).toEqual(first.snapshot());
  await h1.dispose();

  const second = buildGraph(); // a new writer, its own state
  second.set("a", 999);
  second.set("c", "second writer");
  const h2 = attachSnapshotStorage(second, [pairOf(wx, wy)], { compactEvery: Number.POSITIVE_INFINITY });
  cleanups.push(() => h2.dispose());
  await h2.flush();
  expect(replica.snapshot()).not.toEqual(second.snapshot());
  return { replica, follower, second, heads: () => heads };
}

describe.each<[Layout, Counter]>([
  ["one store", "no snapshot counter"],
  ["two stores", "no snapshot counter"],
  ["two stores", "a snapshot counter"],
])("a follower on %s (%s) beside a new writer that stays quiet", (layout, counter) => {
  it(`shows the new writer's state within ${IDLE_BASELINE_POLLS} polls`, async () => {
    const { replica, follower, second } = await newQuietWriter(layout, counter);
    let polls = 0;
    while (polls < IDLE_BASELINE_POLLS && follower.stats().reloads === 0) {
      await follower.poll();
      polls++;
    }
    expect(follower.stats()).toMatchObject({ state: "following", reloads: 1, lastError: undefined });
    expect(replica.snapshot()).toEqual(second.snapshot());
    // Where a counter moves (the store's, or the snapshot tier's own), the first poll sees it.
    if (layout === "one store" || counter === "a snapshot counter") expect(polls).toBe(1);
  });
});

describe("idle polls with a WAL change counter", () => {
  it("read the baseline's head once per IDLE_BASELINE_POLLS polls without a snapshot counter, never with one", async () => {
    for (const counter of ["no snapshot counter", "a snapshot counter"] as const) {
      const { follower, heads } = await newQuietWriter("two stores", counter);
      for (let i = 0; i < IDLE_BASELINE_POLLS; i++) await follower.poll(); // sees the new writer and settles
      const before = heads();
      for (let i = 0; i < 2 * IDLE_BASELINE_POLLS; i++) await follower.poll();
      expect(heads() - before, counter).toBe(counter === "a snapshot counter" ? 0 : 2);
      expect(follower.stats().reloads).toBe(1);
    }
  });
});
