/**
 * SnapshotStorageTier.discard(key) (task 260): drops what the tier holds of `key` unwritten (pending, put back after
 * a failed write, taken by a flush and waiting on the write lane, or failing in flight: not put back), never another
 * key's record, and never a save of the key made after the call. Graph attach discards an ended handle's baseline
 * with it; a rollback dropped a user's records of the shared tier too. Real inline tiers over a memory store (async
 * wrapper: writes settle on a later macrotask) and an engine tier over a SQLite file.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { wrapBackend } from "../support/test-backend.js";

interface Rec {
  name: string;
  v: number;
}

const tmp = tempDir("snapshot-discard");
afterAll(() => tmp.remove());

/** Long retry bounds: nothing is retried unless the test flushes. */
const retry = { initialMs: 60_000, maxMs: 60_000 };

describe("snapshot tier discard(key)", () => {
  it("drops a record put back after a failed write", async () => {
    const inner = memoryBackend();
    const failing = wrapBackend(inner);
    const tier = snapshotStorage<Rec>(failing, { retry, onError: () => {} });
    failing.failAll();
    tier.save({ name: "g", v: 1 }); // sync-through: the write fails, the record is kept for a retry
    tier.discard!("g");
    failing.heal();
    await tier.flush();
    expect(await snapshotStorage<Rec>(inner).load("g")).toBeUndefined();
  });

  it("drops the key's record waiting on the write lane, keeps another key's taken before, writes a later save", async () => {
    const inner = memoryBackend();
    const backend = wrapBackend(inner, { async: true });
    const tier = snapshotStorage<Rec>(backend, { retry, onError: () => {} });
    const release = backend.holdWrites();
    tier.save({ name: "user", v: 1 }); // in flight (held)
    tier.save({ name: "g", v: 1 }); // taken at its flush's call, waiting on the lane behind it
    tier.discard!("g");
    release();
    await tier.flush();
    const before = await snapshotStorage<Rec>(inner).load("g");
    tier.save({ name: "g", v: 2 }); // after the discard: written
    await tier.flush();
    const reader = snapshotStorage<Rec>(inner);
    expect({ before, user: await reader.load("user"), g: await reader.load("g") }).toEqual({
      before: undefined,
      user: { name: "user", v: 1 },
      g: { name: "g", v: 2 },
    });
  });

  it("a write of the key failing in flight is not put back", async () => {
    const inner = memoryBackend();
    const backend = wrapBackend(inner, { async: true });
    const tier = snapshotStorage<Rec>(backend, { retry, onError: () => {} });
    backend.failAll();
    const release = backend.holdWrites();
    tier.save({ name: "g", v: 1 }); // in flight, will fail
    tier.discard!("g");
    release();
    await tier.flush().catch(() => {});
    backend.heal();
    await tier.flush();
    expect(await snapshotStorage<Rec>(inner).load("g")).toBeUndefined();
  });

  it("through an engine tier: the key's pending record is dropped, another key's is written", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const spec = { kind: "sqlite", path: tmp.path("e.db") } as const;
    const tier = engine.snapshot<Rec>(spec, { debounceMs: 60_000 });
    tier.save({ name: "g", v: 1 });
    tier.discard!("g");
    await tier.flush();
    tier.save({ name: "user", v: 1 });
    tier.discard!("g"); // another key's pending record stays
    await tier.flush();
    const g = await tier.load("g");
    const user = await tier.load("user");
    await engine.close();
    expect({ g, user }).toEqual({ g: undefined, user: { name: "user", v: 1 } });
  });
});
