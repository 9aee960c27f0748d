/**
 * An own baseline (attach's, rebaseline's) holds every later frame back until it is durable (docs/design.md §3.16).
 * When its flush fails transiently, the outbox retries it on a timer, not only at the next flush(): a writer that
 * paces itself on `handle.drained()` and never calls flush() used to pile every wave up unwritten in the outbox
 * (200,000 sets: 0 frames stored, +115 MB of heap, found by review), and drained() resolved at once meanwhile.
 * Now drained() waits for the baseline too, and the waves reach the WAL as soon as the store recovered.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { until } from "../support/wait.js";
import { buildGraph, restoredSnapshot, storedFrameSeqs, tempDir } from "../graph-compaction/fixtures.js";

describe("an own baseline whose flush failed is retried without a flush()", () => {
  it("inline: waves paced on drained() reach the WAL once the store recovers, and onError hears the failure once", async () => {
    const backend = faultyBackend(memoryBackend());
    backend.inject({ op: "write", errno: "EIO", key: /^g$/, times: 3 }); // the attach baseline's first writes
    const errors: Error[] = [];
    const graph = buildGraph();
    const pair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { retry: { initialMs: 10_000, maxMs: 10_000 }, onError: () => {} }),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    };
    const handle = attachSnapshotStorage(graph, [pair], { onError: (e) => void errors.push(e) });
    let drainedWaits = 0;
    for (let i = 0; i < 2_000; i++) {
      graph.set("c", `${i}`);
      if (i % 100 === 99) {
        await handle.drained(); // waits for the baseline: the outbox's retry, not the tier's (10 s away), writes it
        drainedWaits++;
      }
    }
    expect(drainedWaits).toBe(20);
    // The last wave's frame is stored (earlier ones may be gone already: reclaimed below a later baseline).
    await until(async () => (await storedFrameSeqs(backend.inner)).at(-1) === 2_001, "every wave in the WAL, no flush() called");
    expect(backend.failures.length).toBe(3);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["backend-error"]);
    expect(await handle.flush()).toBe(2_001);
    expect(await restoredSnapshot({ snapshot: snapshotStorage(backend.inner), wal: kvStorage(backend.inner, { codec: walFrameCodec }) })).toEqual(
      graph.snapshot(),
    );
    await handle.dispose();
  });

  it("engine: the same through a store's actor", async () => {
    const tmp = tempDir("baseline-retry");
    const engine = openStorageEngine({ threads: 1 });
    try {
      const store = { kind: "memory" as const, name: tmp.path("mem") };
      // The engine tiers' flush of the attach baseline fails while the snapshot tier refuses with a transient error:
      // a snapshot tier that fails its first two flushes, around the engine's own.
      const inner = engine.snapshot<GraphCheckpointRecord>(store);
      let failures = 2;
      const snapshot = Object.assign(Object.create(inner) as typeof inner, {
        flush: () => (failures-- > 0 ? Promise.reject(Object.assign(new Error("EIO: injected"), { code: "EIO" })) : inner.flush()),
      });
      const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
      const graph = buildGraph();
      const errors: Error[] = [];
      const handle = attachSnapshotStorage(graph, [{ snapshot, wal }], { onError: (e) => void errors.push(e) });
      for (let i = 0; i < 500; i++) {
        graph.set("c", `${i}`);
        if (i % 100 === 99) await handle.drained();
      }
      await until(async () => (await wal.list("g/wal/")).at(-1) === walFrameKey("g/wal", 501), "every wave in the WAL, no flush() called");
      expect(errors).toHaveLength(1);
      expect(await handle.flush()).toBe(501);
      expect(await restoredSnapshot({ snapshot: inner, wal })).toEqual(graph.snapshot());
      await handle.dispose();
    } finally {
      await engine.close();
      tmp.remove();
    }
  });
});
