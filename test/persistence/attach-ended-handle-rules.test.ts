/**
 * Review r264 of task 260's ended-handle rules (attach-floor.ts, attach.ts):
 * - a dropped (collected) handle's hand-written snapshot tier (no discard) whose baseline is still pending refuses
 *   the new attach (predecessor-pending): before, its retirement was ended only after the check, so the tier was
 *   neither refused nor discarded and restore then failed with wal-gap (F6);
 * - an ended handle's hand-written tier over a store that takes no writes for good (not-owner, read-only) stops
 *   refusing new attaches (F2); over a store failing for now, the way out docs/api.md names (the old tier's
 *   rollback()) lets the next attach through;
 * - the ended tiers noted per graph name stay bounded: none for outboxes that ended with all writes durable, and an
 *   entry goes once its tier was collected (F3);
 * - an engine snapshot tier's discard(key) on a sync-through tier commits a save of the key posted just before it
 *   (the barrier), as proxies.ts and docs/api.md now say (F1).
 * Real tiers over SQLite files (the failing wrapper marked as the file's store: markOnDiskStore), a real engine.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { markOnDiskStore } from "../../src/backend/on-disk.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { endedSnapshotsNoted } from "../../src/persistence/attach-floor.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { collected } from "../support/collect.js";
import { restoredA } from "../support/restored-a.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";

const tmp = tempDir("attach-ended-rules");
afterAll(() => tmp.remove());

/** Long retry bounds: the old tiers write what they kept only when the test flushes them. */
const retry = { initialMs: 60_000, maxMs: 60_000 };
let files = 0;

/** A hand-written snapshot tier: made from a built-in one, without discard(key). */
function handWritten(backend: StorageBackend): SnapshotStorageTier<GraphCheckpointRecord> {
  const wrapper = Object.create(snapshotStorage<GraphCheckpointRecord>(backend, { retry, onError: () => {} })) as SnapshotStorageTier<GraphCheckpointRecord>;
  Object.defineProperty(wrapper, "discard", { value: undefined });
  return wrapper;
}

/** The new handle over `fresh`: a=100 acknowledged; resolves with its flush's seq, or rejects as attach threw. */
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

/** Attaches again until it is not refused with predecessor-pending (each refusal checks the old tier at once). */
async function attachedWithin(fresh: StorageBackend, attempts: number): Promise<{ seq: number; refusals: number }> {
  let refusals = 0;
  for (let i = 0; i < attempts; i++) {
    try {
      return { seq: await newHandle(fresh), refusals };
    } catch (err) {
      if ((err as { code?: unknown }).code !== "predecessor-pending") throw err;
      refusals++;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return { seq: 0, refusals };
}

describe("attach: an ended handle's hand-written snapshot tier", () => {
  it("a dropped (collected) handle's tier still holding its baseline refuses the new attach, which then restores", async () => {
    const file = tmp.path(`g${++files}.db`);
    const inner = sqliteBackend(file);
    const failing = wrapBackend(inner);
    markOnDiskStore(failing);
    const wrapper = handWritten(failing);
    const wal = kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry });
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [{ snapshot: wrapper, wal }], { onError: () => {}, compactEvery: 1 });
      await h.flush();
      failing.failAll();
      for (let v = 1; v <= 5; v++) g.set("a", v);
      await h.flush().catch(() => {});
      return new WeakRef(g);
    };
    expect(await collected(await dropped())).toBe(true);
    const fresh = sqliteBackend(file);
    let first: unknown = "acknowledged";
    try {
      await newHandle(fresh);
    } catch (err) {
      first = err instanceof StorageError ? { code: err.code, store: err.details?.store } : err;
    }
    // What the user does on that error: the old tiers write what they kept, then attach again.
    failing.heal();
    await wal.flush();
    await wrapper.flush();
    // Before the fix the first attach was acknowledged and this restore refused with wal-gap (the old baseline landed).
    const afterOld = first === "acknowledged" ? await restoredA(fresh) : "refused";
    const { seq } = await attachedWithin(fresh, 100);
    const a = await restoredA(fresh);
    await fresh.close();
    await inner.close();
    expect({ first, afterOld, acknowledged: seq > 0, a }).toEqual({
      first: { code: "predecessor-pending", store: `sqlite:${file}` },
      afterOld: "refused",
      acknowledged: true,
      a: 100,
    });
  });

  for (const code of ["not-owner", "read-only"] as const) {
    it(`over a store that takes no writes for good (${code}), it stops refusing new attaches`, async () => {
      const file = tmp.path(`g${++files}.db`);
      const inner = sqliteBackend(file);
      const w = wrapBackend(inner);
      let ended = false;
      const fail = (): never => {
        throw new StorageError(code, `store takes no writes (${code})`, {});
      };
      const dead: StorageBackend = {
        ...w,
        write: (k, v) => (ended ? fail() : w.write(k, v)),
        writeBatch: (ops) => (ended ? fail() : w.writeBatch!(ops)),
        delete: (k) => (ended ? fail() : w.delete!(k)),
      };
      markOnDiskStore(dead);
      const wrapper = handWritten(dead);
      const wal = kvStorage<WALFrame>(dead, { codec: walFrameCodec, retry, onError: () => {} });
      const g0 = createGraph("g");
      g0.state("a", 0);
      const h0 = attachSnapshotStorage(g0, [{ snapshot: wrapper, wal }], { onError: () => {}, compactEvery: 1 });
      await h0.flush();
      ended = true;
      for (let v = 1; v <= 5; v++) g0.set("a", v);
      await h0.dispose().catch(() => {});
      const oldFlush = await wrapper.flush().then(() => "ok", (e: unknown) => (e as { code?: string }).code);
      const fresh = sqliteBackend(file);
      const { seq } = await attachedWithin(fresh, 20);
      const a = await restoredA(fresh);
      await fresh.close();
      await inner.close();
      // Before the fix: refused with predecessor-pending every time (the tier can never land its baseline).
      expect({ oldFlush, acknowledged: seq > 0, a }).toEqual({ oldFlush: code, acknowledged: true, a: 100 });
    });
  }

  it("over a store failing for now, the old tier's rollback() is the way out (docs/api.md)", async () => {
    const file = tmp.path(`g${++files}.db`);
    const inner = sqliteBackend(file);
    const failing = wrapBackend(inner);
    markOnDiskStore(failing);
    const wrapper = handWritten(failing);
    const wal = kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry });
    const g0 = createGraph("g");
    g0.state("a", 0);
    const h0 = attachSnapshotStorage(g0, [{ snapshot: wrapper, wal }], { onError: () => {}, compactEvery: 1 });
    await h0.flush();
    failing.failAll(); // the old backend keeps failing: the tier keeps its baseline for a retry
    for (let v = 1; v <= 5; v++) g0.set("a", v);
    await h0.dispose().catch(() => {});
    const fresh = sqliteBackend(file);
    const before = await attachedWithin(fresh, 3);
    wrapper.rollback();
    const after = await attachedWithin(fresh, 20);
    const a = await restoredA(fresh);
    failing.heal();
    await wal.flush();
    await fresh.close();
    await inner.close();
    expect({ refused: before.seq === 0, acknowledged: after.seq > 0, a }).toEqual({ refused: true, acknowledged: true, a: 100 });
  });
});

describe("attach: the ended snapshot tiers noted per graph name stay bounded", () => {
  it("an outbox that ended with all its writes durable is not noted", async () => {
    const file = tmp.path(`g${++files}.db`);
    const backend = sqliteBackend(file);
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend);
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    const noted: number[] = [];
    for (let i = 0; i < 5; i++) {
      const g = createGraph(`u-${i}`);
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [{ snapshot, wal }], { onError: () => {} });
      g.set("a", 1);
      await h.flush();
      await h.dispose();
      noted.push(endedSnapshotsNoted(snapshot, `u-${i}`));
    }
    await backend.close();
    expect(noted).toEqual([0, 0, 0, 0, 0]); // before: one entry per name, never removed unless it was attached again
  });

  it("an entry goes once its tier was collected", async () => {
    const file = tmp.path(`g${++files}.db`);
    const inner = sqliteBackend(file);
    const failing = wrapBackend(inner);
    markOnDiskStore(failing);
    const probe = snapshotStorage<GraphCheckpointRecord>(failing); // the same store: it reads the entries of it
    const ended = async (): Promise<WeakRef<SnapshotStorageTier<GraphCheckpointRecord>>> => {
      const snapshot = snapshotStorage<GraphCheckpointRecord>(failing, { retry });
      const wal: KvStorageTier<WALFrame> = kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry });
      const g = createGraph("c");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [{ snapshot, wal }], { onError: () => {}, compactEvery: 1 });
      await h.flush();
      failing.failAll();
      g.set("a", 1);
      await h.dispose().catch(() => {});
      failing.heal();
      await wal.close();
      await snapshot.close();
      return new WeakRef(snapshot);
    };
    const ref = await ended();
    const noted = endedSnapshotsNoted(probe, "c");
    const gone = await collected(ref);
    let left = endedSnapshotsNoted(probe, "c");
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 5)); // the finalization callback runs in a later turn
      left = endedSnapshotsNoted(probe, "c");
    }
    await probe.close();
    await inner.close();
    expect({ noted, gone, left }).toEqual({ noted: 1, gone: true, left: 0 });
  });
});

it("engine snapshot tier, sync-through: discard(key) right after a save of the key lets that save be written", async () => {
  const engine = openStorageEngine({ threads: 1 });
  try {
    const tier = engine.snapshot<{ name: string; v: number }>({ kind: "sqlite", path: tmp.path(`e${++files}.db`) });
    tier.save({ name: "g", v: 1 });
    tier.discard!("g"); // a barrier of the actor's group commit: the held save commits first
    tier.save({ name: "h", v: 2 });
    tier.discard!("h");
    await tier.flush();
    expect([await tier.load("g"), await tier.load("h")]).toEqual([{ name: "g", v: 1 }, { name: "h", v: 2 }]);
  } finally {
    await engine.close();
  }
});
