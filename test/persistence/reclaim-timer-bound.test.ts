/**
 * A snapshot tier's debounceMs past Node's timer range (2^31 - 1 ms) also set the delay of attach's reclaim after a
 * periodic baseline: Node ran that timer after 1 ms with a TimeoutOverflowWarning (review of task 246). The reclaim's
 * delay now passes through timerBound like every other user-given delay: with no window timer the tier writes on
 * flush(), so the reclaim asks after the pair's next flush. Real memory backend, real timers.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { MAX_TIMER_MS } from "../../src/base/timers.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, parseWalFrameKey, walFrameCodec, type WALFrame } from "../../src/wal/index.js";

describe("attach's reclaim delay beyond Node's timer range", () => {
  it("sets no overflowing timer (no TimeoutOverflowWarning) and the baselines still land on flush()", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on("warning", onWarning);
    const backend = memoryBackend();
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { debounceMs: MAX_TIMER_MS + 1 });
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    const g = createGraph("g");
    g.state("v", 0);
    // Default cadence (by size): frames of ~2 KB outgrow twice the 64 KiB floor after ~70 sets, a baseline follows.
    const h = attachSnapshotStorage(g, [{ snapshot, wal }]);
    try {
      for (let i = 1; i <= 200; i++) g.set("v", { i, pad: "x".repeat(2_000) });
      await h.flush();
      await new Promise((done) => setTimeout(() => setImmediate(done), 20)); // a warning is emitted on a later tick
      expect(warnings).not.toContain("TimeoutOverflowWarning");
      const stored = JSON.parse(new TextDecoder().decode((await backend.read("g")) as Uint8Array)) as GraphCheckpointRecord;
      expect(stored.seq).toBeGreaterThan(1); // a periodic baseline, not only the attach's
      // Its frames are reclaimed after the flush that wrote it (no timer to ask earlier): none at or below it stays.
      const prefix = graphWalPrefix("g");
      await h.flush();
      await new Promise((done) => setTimeout(done, 50)); // the reclaim's read-back and deletes are asynchronous
      const below = backend.list(`${prefix}/`).filter((k) => (parseWalFrameKey(prefix, k) as number) <= stored.seq);
      expect(below).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await h.dispose();
    }
  });
});
