/**
 * Task 255: a live handle whose WAL tier is full (backpressure) over a store that fails every write. flush() waited
 * for room that never came (attach-outbox.ts flush()'s backpressure wait): neither flush() nor dispose() settled, the
 * claim stayed and a new attach of the graph was refused. Now the wait ends with the store's error once the tier's
 * write attempts keep failing, dispose() settles and frees the name. The control: a store that fails twice and then
 * recovers is ridden out (flush resolves, every wave stored). Real memory backend behind the asynchronous test
 * wrapper; outcomes, never timings.
 * Task 256: handle.drained() waited for room only (attach-outbox.ts drained()) and hung over the dead store; it now
 * ends with the store's error as flush() does. The WAL-group case (two pairs sharing the WAL tier, waves collapsed
 * into baselines) is a guard: it settled before too, each member's own flush() bounding its wait.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => `rejected ${(e as { code?: string }).code ?? String(e)}`,
  );

/** A graph attached over `backend` with a small WAL tier bound (retries kept short), filled past it by 50 sets. */
async function fullTier(backend: TestBackend, fail: (b: TestBackend) => void) {
  const pair: AttachPair = {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { retry: { initialMs: 5, maxMs: 20 } }),
    wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, maxPendingBytes: 2_000, retry: { initialMs: 5, maxMs: 20 } }),
  };
  const g = createGraph("g");
  g.state("a", "");
  const h = attachSnapshotStorage(g, [pair], { onError: () => {} });
  await h.flush();
  fail(backend);
  for (let v = 1; v <= 50; v++) g.set("a", "x".repeat(200) + v);
  return { pair, g, h };
}

/** Two pairs sharing one WAL tier over `backend` (a WAL group), each with its own healthy snapshot store; waves of
 * 20 frames past the bound and maxQueuedBytes, so they collapse into one baseline per pair. */
async function fullGroupTier(backend: TestBackend) {
  const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec, maxPendingBytes: 2_000, retry: { initialMs: 5, maxMs: 20 } });
  const pairs: AttachPair[] = [0, 1].map(() => wrapBackend(memoryBackend(), { async: true })).map((b) => ({
    snapshot: snapshotStorage<GraphCheckpointRecord>(b, { retry: { initialMs: 5, maxMs: 20 } }),
    wal,
  }));
  const g = createGraph("g");
  for (let n = 0; n < 20; n++) g.state(`n${n}`, "");
  const h = attachSnapshotStorage(g, pairs, { onError: () => {}, maxQueuedBytes: 8_000 });
  await h.flush();
  backend.failAll();
  // Waves of 20 frames: the tier takes part of one and refuses the rest (kept queued through the collapse).
  for (let v = 1; v <= 20; v++) g.batch(() => { for (let n = 0; n < 20; n++) g.set(`n${n}`, "x".repeat(200) + v); });
  return { h };
}

describe("attach: drained() behind a full WAL tier over a dead store (task 256)", () => {
  it("drained() rejects with the store's error; dispose() settles", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h } = await fullTier(backend, (b) => b.failAll());
    const drained = await outcome(h.drained());
    const disposed = await outcome(h.dispose());
    backend.heal();
    expect({ drained, disposed }).toEqual({ drained: "rejected backend-error", disposed: "rejected backend-error" });
  });

  it("guard: a WAL group's flush() rejects with the store's error; dispose() settles", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h } = await fullGroupTier(backend);
    const flushed = await outcome(h.flush());
    const disposed = await outcome(h.dispose());
    backend.heal();
    expect({ flushed, disposed }).toEqual({ flushed: "rejected backend-error", disposed: "rejected backend-error" });
  });

  it("control: drained() rides out a store failing twice then recovering", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h } = await fullTier(backend, (b) => b.failNext(2));
    expect(await outcome(h.drained())).toBe("resolved");
    expect(await outcome(h.dispose())).toBe("resolved");
  });
});

describe("attach: flush() behind a full WAL tier", () => {
  it("rejects with the store's error when every write fails; dispose() settles and frees the name", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { pair, h } = await fullTier(backend, (b) => b.failAll());
    const flushed = await outcome(h.flush());
    const disposed = await outcome(h.dispose());
    let attach = "ok";
    try {
      const again = createGraph("g");
      again.state("a", "");
      await attachSnapshotStorage(again, [pair], { onError: () => {} }).dispose().catch(() => {});
    } catch (err) {
      attach = (err as { code?: string }).code ?? String(err);
    }
    backend.heal();
    // The store's error (the wrapper's EIO, as the tier reports it), not backpressure: both settle with it.
    expect({ flushed, disposed, attach }).toEqual({ flushed: "rejected backend-error", disposed: "rejected backend-error", attach: "ok" });
  });

  it("control: a store failing twice then recovering is ridden out, every wave stored", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h, g } = await fullTier(backend, (b) => b.failNext(2));
    expect(await outcome(h.flush())).toBe("resolved");
    expect(await outcome(h.dispose())).toBe("resolved");
    const r = createGraph("g");
    r.state("a", "");
    await restoreSnapshot(r, {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend.inner),
      wal: kvStorage<WALFrame>(backend.inner, { codec: walFrameCodec }),
    });
    expect(r.get("a")).toBe(g.get("a"));
  });
});
