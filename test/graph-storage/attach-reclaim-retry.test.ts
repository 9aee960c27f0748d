/**
 * A failed batch of dead-frame deletes is retried on a timer (docs/design.md §3.18): 100 ms doubling to 10 s,
 * jittered, onError hearing it once per failing spell. Before, "stale" mode (engine tiers of one store: the frames
 * stored before attach) retried it at the next attach only, and "all" mode at the next periodic baseline only,
 * which a writer gone quiet never makes. A closed WAL tier ends the retries.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, StorageError, type StorageHandle } from "../../src/index.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import type { WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { until } from "../support/wait.js";
import {
  buildGraph,
  enginePair,
  inlinePair,
  openBackend,
  restoredSnapshot,
  storedBaseline,
  storedFrameSeqs,
  tempDir,
} from "../graph-compaction/fixtures.js";
import type { StorageBackend } from "../../src/backend/types.js";

const tmp = tempDir("reclaim-retry");
afterAll(() => tmp.remove());

async function churn(graph: ReturnType<typeof buildGraph>, handle: StorageHandle, n: number, salt: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    graph.set("c", `${"payload ".repeat(75)}${salt}-${i}`);
    if (i % 50 === 49) await handle.flush();
  }
  await handle.flush();
}

async function deadFrames(backend: StorageBackend): Promise<number> {
  const base = (await storedBaseline(backend)).seq;
  return (await storedFrameSeqs(backend)).filter((s) => s <= base).length;
}

/** The real engine WAL tier whose first `failures` deleteMany calls fail as a sick disk's would (then it passes). */
function failingDeletes(wal: KvStorageTier<WALFrame>, failures: number): { wal: KvStorageTier<WALFrame>; calls: () => number } {
  let calls = 0;
  const spy = Object.create(wal) as KvStorageTier<WALFrame>;
  spy.deleteMany = (keys) => {
    calls++;
    if (calls <= failures) return Promise.reject(Object.assign(new Error("EIO: i/o error, unlink"), { code: "EIO" }));
    return wal.deleteMany!(keys);
  };
  return { wal: spy, calls: () => calls };
}

describe("a failed delete batch is retried without another baseline", () => {
  it('"all" (inline): the frames left by a failed batch are deleted once the store heals, with no more writes', async () => {
    const backend = faultyBackend(openBackend("sqlite", tmp));
    const errors: Error[] = [];
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { onError: (e) => void errors.push(e) });
    await handle.flush();
    backend.inject({ op: "writeBatch", errno: "EIO", deletesOnly: true });
    backend.inject({ op: "delete", errno: "EIO" });
    await churn(graph, handle, 300, 1); // one periodic baseline: its reclaim fails
    await until(() => errors.length > 0, "the failed delete to be reported");
    expect(await deadFrames(backend.inner)).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 400)); // several retries fail meanwhile
    expect(errors).toHaveLength(1); // once per failing spell, not per retry
    backend.heal(); // and the writer is quiet from now on
    await until(async () => (await deadFrames(backend.inner)) === 0, "dead frames deleted by a retry", { timeoutMs: 15_000 });
    expect(await restoredSnapshot(inlinePair(backend.inner))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });

  it('"stale" (engine, one store): the frames stored before attach are deleted by a retry, not at the next attach', async () => {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("stale.db") };
    const engine = openStorageEngine({ threads: 1 });
    const errors: Error[] = [];
    try {
      const first = buildGraph();
      const h1 = attachSnapshotStorage(first, [enginePair(engine, store)]);
      await churn(first, h1, 60, 1); // below the fold threshold: they stay
      await h1.dispose();

      const graph = buildGraph();
      await restoreSnapshot(graph, enginePair(engine, store));
      const pair = enginePair(engine, store);
      const faulty = failingDeletes(pair.wal, 2);
      const handle = attachSnapshotStorage(graph, [{ snapshot: pair.snapshot, wal: faulty.wal }], {
        onError: (e) => void errors.push(e),
      });
      await handle.flush();
      await until(() => faulty.calls() >= 3, "the batch retried after two failures", { timeoutMs: 10_000 });
      await until(async () => (await pair.wal.list(`${graph.name}/wal/`)).length === 0, "the stale frames deleted");
      expect(errors).toHaveLength(1);
      await handle.dispose();
    } finally {
      await engine.close();
    }
    const backend = sqliteBackend(store.path);
    try {
      expect(await storedFrameSeqs(backend)).toEqual([]);
    } finally {
      await backend.close?.();
    }
  });

  it('"all" (inline): a read-back that failed to read is tried again, with no more writes', async () => {
    const backend = faultyBackend(openBackend("sqlite", tmp));
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)]);
    await handle.flush();
    backend.inject({ op: "read", errno: "EIO", key: new RegExp(`^${graph.name}$`) }); // the stored baseline's reads
    await churn(graph, handle, 300, 1); // one periodic baseline: its read-back fails
    await until(() => backend.failures.some((f) => f.op === "read"), "the read-back to fail");
    expect(await deadFrames(backend.inner)).toBeGreaterThan(0);
    backend.heal(); // and the writer is quiet from now on
    await until(async () => (await deadFrames(backend.inner)) === 0, "dead frames deleted after a new read-back", { timeoutMs: 15_000 });
    expect(await restoredSnapshot(inlinePair(backend.inner))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });

  it("dispose ends the retries: a disposed handle reads nothing back and deletes nothing (review: it went on polling)", async () => {
    const backend = faultyBackend(openBackend("sqlite", tmp));
    const graph = buildGraph();
    const pair = inlinePair(backend);
    let deletes = 0;
    const deleteMany = pair.wal.deleteMany!.bind(pair.wal);
    pair.wal.deleteMany = (keys) => {
      deletes++;
      return deleteMany(keys);
    };
    const handle = attachSnapshotStorage(graph, [pair]);
    await handle.flush();
    backend.inject({ op: "read", errno: "EIO", key: new RegExp(`^${graph.name}$`) }); // every read-back fails
    await churn(graph, handle, 300, 1);
    await until(() => backend.failures.some((f) => f.op === "read"), "the read-back to fail");
    await handle.dispose();
    const readsAtDispose = backend.failures.filter((f) => f.op === "read").length;
    const deletesAtDispose = deletes;
    await new Promise((r) => setTimeout(r, 1_500)); // retries (100 ms doubling) would have come by now
    expect(backend.failures.filter((f) => f.op === "read")).toHaveLength(readsAtDispose);
    backend.heal();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(deletes).toBe(deletesAtDispose);
    expect(await deadFrames(backend.inner)).toBeGreaterThan(0); // left for the next attach
    const next = buildGraph();
    await restoreSnapshot(next, inlinePair(backend.inner));
    const again = attachSnapshotStorage(next, [inlinePair(backend.inner)]);
    await again.flush();
    await until(async () => (await deadFrames(backend.inner)) === 0, "the next attach deletes them");
    await again.dispose();
    await backend.close?.();
  });

  it("a closed WAL tier ends the retries silently", async () => {
    const backend = faultyBackend(openBackend("memory", tmp));
    const errors: Error[] = [];
    const graph = buildGraph();
    const pair = inlinePair(backend);
    const handle = attachSnapshotStorage(graph, [pair], { onError: (e) => void errors.push(e) });
    await handle.flush();
    backend.inject({ op: "writeBatch", errno: "EIO", deletesOnly: true });
    backend.inject({ op: "delete", errno: "EIO" });
    await churn(graph, handle, 300, 1);
    await until(() => errors.length > 0, "the failed delete to be reported");
    let afterClose = 0;
    const deleteMany = pair.wal.deleteMany!.bind(pair.wal);
    pair.wal.deleteMany = (keys) => {
      afterClose++;
      return deleteMany(keys);
    };
    await pair.wal.close();
    await new Promise((r) => setTimeout(r, 1_500)); // retries would have come by now
    expect(afterClose).toBeLessThanOrEqual(1); // the one that found the tier closed
    expect(errors.filter((e) => !(e instanceof StorageError && e.code === "closed"))).toHaveLength(1);
    await handle.dispose().catch(() => {});
  });
});
