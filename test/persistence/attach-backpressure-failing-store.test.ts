/**
 * Task 255: a live handle whose WAL tier is full (backpressure) over a store that fails every write. flush() waited
 * for room that never came (attach-outbox.ts flush()'s backpressure wait): neither flush() nor dispose() settled, the
 * claim stayed and a new attach of the graph was refused. Now the wait ends with the store's error once the tier's
 * write attempts keep failing, dispose() settles and frees the name. The control: a store that fails twice and then
 * recovers is ridden out (flush resolves, every wave stored). Real memory backend behind the asynchronous test
 * wrapper; outcomes, never timings.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { attachA, backendPair } from "../support/graph-a-pair.js";
import { restoredA } from "../support/restored-a.js";
import { outcome } from "../support/settled.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";

/**
 * A graph attached over `backend` with a small WAL tier bound (retries kept short), filled past it by 50 sets.
 * `group`: a second pair (its own snapshot tier, another store) shares the WAL tier: one WAL group.
 */
async function fullTier(backend: TestBackend, fail: (b: TestBackend) => void, group = false) {
  const pair = backendPair(backend, { maxPendingBytes: 2_000 });
  const pairs = [pair];
  if (group) pairs.push({ snapshot: snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { name: "other" }), wal: pair.wal });
  const { g, h, fill } = attachA(pairs);
  await h.flush();
  fail(backend);
  fill();
  return { pair, g, h };
}

/** Resolves once the backend failed at least `n` writes (the tier's retries and the waits' attempts). */
async function failedWrites(backend: TestBackend, n: number): Promise<void> {
  while (backend.counts.failed < n) await new Promise((r) => setTimeout(r, 5));
}

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
    expect(await restoredA(backend.inner)).toBe(g.get("a"));
  });
});

/**
 * Task 258: the waits that waited for room only. Over a store that takes no writes for good (its backend closed
 * under the tiers: every write throws StorageError("closed"), and the tier retries it as any failure) handle.drained()
 * never settled, alone or in a WAL group; it now rejects with the store's error, as flush() and dispose() do. The
 * control: a store failing every write (EIO, as a full disk fails) that recovers later is waited through: drained()
 * resolves once it took the writes, well past the 3 failed attempts after which flush() gives its answer.
 */
describe("attach: waits behind a full WAL tier tell a dead store from a full one", () => {
  it.each([false, true])("a closed store: drained() rejects with closed, flush() and dispose() too (WAL group: %s)", async (group) => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h } = await fullTier(backend, (b) => void b.inner.close?.(), group);
    const drained = await outcome(h.drained());
    const flushed = await outcome(h.flush());
    const disposed = await outcome(h.dispose());
    expect({ drained, flushed, disposed }).toEqual({ drained: "rejected closed", flushed: "rejected closed", disposed: "rejected closed" });
  }, 10_000);

  it("a store failing every write that recovers: drained() waits it through and resolves, every wave stored", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const { h, g } = await fullTier(backend, (b) => b.failAll());
    let settled = "pending";
    const drained = outcome(h.drained()).then((o) => (settled = o));
    // Meanwhile flush() gives its answer (not durable) after its failed attempts; drained() goes on waiting.
    expect(await outcome(h.flush())).toBe("rejected backend-error");
    await failedWrites(backend, backend.counts.failed + 4);
    expect(settled).toBe("pending");
    backend.heal();
    expect(await drained).toBe("resolved");
    expect(await outcome(h.flush())).toBe("resolved");
    expect(await outcome(h.dispose())).toBe("resolved");
    expect(await restoredA(backend.inner)).toBe(g.get("a"));
  }, 20_000);
});
