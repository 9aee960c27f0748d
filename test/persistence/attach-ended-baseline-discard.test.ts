/**
 * Task 260: the next attach of a graph drops what an ENDED handle's snapshot tier still holds of the graph's
 * baseline (its last flush failed, the tier retries it on its own timer), and only that key. Before, it rolled the
 * whole tier back (task 254's fix): a user's own unflushed save of another key in that shared tier was lost too
 * (design §3.7: users may share a tier). Also: the dropped-handle (collected) path of that fix, a wrapper tier whose
 * rollback() does nothing (the discard still works), and a wrapper without discard(key): the new attach is refused
 * with StorageError("predecessor-pending") until the ended handle's baseline was written. Real tiers over a memory
 * store and SQLite files (the failing wrapper marked as the file's store: markOnDiskStore).
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { markOnDiskStore } from "../../src/backend/on-disk.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { collected } from "../support/collect.js";
import { restoredA } from "../support/restored-a.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";

const tmp = tempDir("attach-ended-discard");
afterAll(() => tmp.remove());

/** A user's own record in the shared snapshot tier (any `name` other than the graph's is another key). */
const userRecord = { name: "user-notes", seq: 7, note: "mine" } as unknown as GraphCheckpointRecord;

type Store = "memory" | "sqlite, another backend";

interface Setup {
  readonly inner: StorageBackend;
  readonly failing: TestBackend;
  /** What the new attach writes through: the failing wrapper (memory) or another backend of the file. */
  readonly fresh: StorageBackend;
}

let files = 0;
function setup(store: Store): Setup {
  const file = tmp.path(`g${++files}.db`);
  const inner = store === "memory" ? memoryBackend() : sqliteBackend(file);
  const failing = wrapBackend(inner);
  // The wrapper writes to the SQLite file it wraps, under its name: the same store (src/tier/store-identity.ts).
  if (store !== "memory") markOnDiskStore(failing);
  return { inner, failing, fresh: store === "memory" ? failing : sqliteBackend(file) };
}

/** Long retry bounds: the old tiers write what they kept only when the test flushes them. */
const retry = { initialMs: 60_000, maxMs: 60_000 };

function oldPair(failing: StorageBackend): AttachPair {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(failing, { retry }),
    wal: kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry }),
  };
}

/** Attaches `g` through `pair`, flushes, then fails every write and changes `a` (compactEvery 1: baselines too). */
async function endedWrites(pair: AttachPair): Promise<{ g: ReactiveGraph; h: StorageHandle }> {
  const g = createGraph("g");
  g.state("a", 0);
  const h = attachSnapshotStorage(g, [pair], { onError: () => {}, compactEvery: 1 });
  await h.flush();
  return { g, h };
}

/** The new handle over `fresh`: a=100 acknowledged; resolves with its flush's seq. */
async function newHandle(fresh: StorageBackend): Promise<number> {
  const g = createGraph("g");
  g.state("a", 0);
  const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(fresh), wal: kvStorage<WALFrame>(fresh, { codec: walFrameCodec }) }], {
    onError: () => {},
  });
  g.set("a", 100);
  const seq = await h.flush();
  await h.dispose();
  return seq;
}

async function closeAll(s: Setup): Promise<void> {
  if (s.fresh !== s.failing) await s.fresh.close?.();
  await s.inner.close?.();
}

describe("attach: an ended handle's baseline is discarded by key, not by rolling its tier back", () => {
  for (const store of ["memory", "sqlite, another backend"] as const satisfies readonly Store[]) {
    it(`${store}: a user's unflushed save of another key in the ended handle's snapshot tier is written`, async () => {
      const s = setup(store);
      const old = oldPair(s.failing);
      const { g: g0, h: h0 } = await endedWrites(old);
      s.failing.failAll();
      for (let v = 1; v <= 5; v++) g0.set("a", v);
      await h0.dispose().catch(() => {}); // its last flush fails: its baseline stays pending in old.snapshot
      old.snapshot.save(userRecord); // the user's own record, in the same tier: its write fails, kept for a retry
      s.failing.heal();
      const seq = await newHandle(s.fresh);
      // The old tiers write what they kept (as their retry timers would later).
      await old.wal!.flush();
      await old.snapshot.flush();
      const mine = await snapshotStorage<GraphCheckpointRecord>(s.fresh).load("user-notes");
      const a = await restoredA(s.fresh);
      await closeAll(s);
      expect({ acknowledged: seq > 0, a, mine }).toEqual({ acknowledged: true, a: 100, mine: userRecord });
    });
  }

  it("sqlite, another backend: a dropped (collected) handle's baseline left in its tier never lands over the new one", async () => {
    const s = setup("sqlite, another backend");
    const old = oldPair(s.failing);
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const { g, h } = await endedWrites(old);
      s.failing.failAll();
      for (let v = 1; v <= 5; v++) g.set("a", v);
      await h.flush().catch(() => {}); // fails: its frames and last baseline stay pending in the old tiers
      return new WeakRef(g);
    };
    expect(await collected(await dropped())).toBe(true);
    // Its retirement's flush fails too (the old store still fails): the new attach, through another backend of the
    // file, ends the retirement (attach-floor.ts cedeRetiring) or finds it ended.
    const seq = await newHandle(s.fresh);
    s.failing.heal();
    await old.wal!.flush();
    await old.snapshot.flush();
    const a = await restoredA(s.fresh);
    await closeAll(s);
    expect({ acknowledged: seq > 0, a }).toEqual({ acknowledged: true, a: 100 });
  });

  it("sqlite, another backend: a wrapper tier whose rollback() does nothing still has its baseline discarded", async () => {
    const s = setup("sqlite, another backend");
    const old = oldPair(s.failing);
    // A user's wrapper (Object.create over a built-in tier keeps its store and its discard): rollback is a no-op.
    const wrapper = Object.create(old.snapshot) as SnapshotStorageTier<GraphCheckpointRecord>;
    wrapper.rollback = () => {};
    const { g: g0, h: h0 } = await endedWrites({ snapshot: wrapper, wal: old.wal });
    s.failing.failAll();
    for (let v = 1; v <= 5; v++) g0.set("a", v);
    await h0.dispose().catch(() => {});
    s.failing.heal();
    const seq = await newHandle(s.fresh);
    await old.wal!.flush();
    await old.snapshot.flush();
    const a = await restoredA(s.fresh);
    await closeAll(s);
    expect({ acknowledged: seq > 0, a }).toEqual({ acknowledged: true, a: 100 });
  });

  it("sqlite, another backend: a wrapper without discard(key) refuses the new attach until the old baseline is written", async () => {
    const s = setup("sqlite, another backend");
    const old = oldPair(s.failing);
    const wrapper = Object.create(old.snapshot) as SnapshotStorageTier<GraphCheckpointRecord>;
    wrapper.rollback = () => {};
    Object.defineProperty(wrapper, "discard", { value: undefined });
    const { g: g0, h: h0 } = await endedWrites({ snapshot: wrapper, wal: old.wal });
    s.failing.failAll();
    for (let v = 1; v <= 5; v++) g0.set("a", v);
    await h0.dispose().catch(() => {});
    s.failing.heal();
    let refused: unknown;
    try {
      await newHandle(s.fresh);
    } catch (err) {
      refused = (err as { code?: unknown }).code;
    }
    // What the user does on that error: the old tiers write what they kept, then attach again.
    await old.wal!.flush();
    await wrapper.flush();
    let seq = 0;
    for (let i = 0; i < 100 && seq === 0; i++) {
      try {
        seq = await newHandle(s.fresh);
      } catch (err) {
        if ((err as { code?: unknown }).code !== "predecessor-pending") throw err;
        await new Promise((r) => setTimeout(r, 10)); // the refusal checked the tier again: it settles in a turn
      }
    }
    const a = await restoredA(s.fresh);
    await closeAll(s);
    expect({ refused, acknowledged: seq > 0, a }).toEqual({ refused: "predecessor-pending", acknowledged: true, a: 100 });
  });
});
