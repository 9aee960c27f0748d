/**
 * Which baseline a stop names (review r329 F6, task 334):
 * - a WAL group (two snapshot tiers, one WAL) whose second snapshot tier refused its periodic baseline: the first
 *   pair, stopped with it, said "the baseline at seq N was refused for good" too, though its own baseline was not;
 *   it now says it stopped with that pair of its WAL group.
 * - a loss check of a snapshot tier (writes of unknown keys lost) that could not read the tier, closed meanwhile by
 *   its owner: the stop named "the write at seq D+1" where the baseline in question is meant.
 * Memory backends and real tiers; the refusal and the loss are told through the tier's refusal watch.
 */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { RefusalListener, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { settledTo } from "../support/settled.js";

type Snapshot = SnapshotStorageTier<GraphCheckpointRecord>;

/** `inner`, whose next save throws once `refuse()` was called (a codec refusing that baseline). */
function refusingOnce(inner: Snapshot): { tier: Snapshot; refuse(): void } {
  let armed = false;
  const tier = Object.create(inner) as Snapshot;
  tier.save = (record) => {
    if (armed) {
      armed = false;
      throw new CodecError("encode-failed", "refused for the test");
    }
    inner.save(record);
  };
  return { tier, refuse: () => void (armed = true) };
}

it("a WAL group's pair stopped by the other pair's refused baseline says so, not that its baseline was refused", async () => {
  const wal = kvStorage<WALFrame>(memoryBackend(), { codec: walFrameCodec });
  const s1 = snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { name: "snap-one" });
  const s2 = refusingOnce(snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { name: "snap-two" }));
  const g = createGraph("g");
  g.state("a", 0);
  const heard: Error[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: s1, wal }, { snapshot: s2.tier, wal }], {
    compactEvery: 2,
    onError: (e) => void heard.push(e),
  });
  g.set("a", 1);
  await h.flush();
  s2.refuse();
  g.set("a", 2); // the second wave: a periodic baseline (seq 3), refused in snap-two
  expect(await settledTo(h.flush())).toMatchObject({ code: "write-refused" });
  await h.dispose().catch(() => undefined);
  const stops = heard.filter((e) => e instanceof StorageError && e.code === "write-refused");
  expect(stops).toHaveLength(2);
  // snap-two's own stop names its baseline; snap-one's names the pair it stopped with (before: the same baseline).
  expect(stops.filter((e) => /the baseline at seq 3 was refused for good/.test(e.message))).toHaveLength(1);
  const member = stops.find((e) => /stopped with pair "snap-two" of its WAL group/.test(e.message));
  expect(member).toMatchObject({ details: { graph: "g", seq: 3, pair: "snap-two" } });
  expect((member as StorageError).details.baseline).toBeUndefined();
});

it("a snapshot loss check that cannot read the tier its owner closed names the baseline in question", async () => {
  const inner = snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { name: "snap", debounceMs: 60_000 });
  const listeners: RefusalListener[] = [];
  const snapshot = Object.create(inner) as Snapshot;
  snapshot.watchRefusals = (_prefix, listener) => {
    listeners.push(listener);
    return () => undefined;
  };
  const g = createGraph("g");
  g.state("a", 0);
  const heard: Error[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot, wal: kvStorage<WALFrame>(memoryBackend(), { codec: walFrameCodec }) }], {
    compactEvery: 1,
    onError: (e) => void heard.push(e),
  });
  await h.flush(); // the own baseline (seq 1)
  g.set("a", 1); // its frame (seq 2), then a periodic baseline at seq 2, pending in the debounced snapshot tier
  await new Promise((resolve) => setImmediate(resolve));
  await inner.close(); // its owner closes it (writing the baseline): the pair has not acknowledged it
  expect(listeners).toHaveLength(1);
  listeners[0]!(undefined, new StorageError("worker-crashed", "writes of unknown keys lost (for the test)"));
  const err = (await settledTo(h.flush())) as StorageError;
  expect(err).toMatchObject({ code: "closed", details: { graph: "g", reason: "tier-closed", seq: 2, baseline: 2 } });
  expect(err.message).toMatch(/the baseline at seq 2 is not acknowledged/);
  expect(heard).toContain(err);
  await h.dispose().catch(() => undefined);
});
