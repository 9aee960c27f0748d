/**
 * Back-offs a caller may set past Node's timer range (2^31 - 1 ms, ~24.8 days), review r249 D3: a tier's automatic
 * retry waited retry.initialMs / maxMs as given, and setTimeout runs a longer delay after 1 ms, so a failing store was
 * retried about every millisecond (a hot loop against a sick disk). The same for a follower's pollMs. Both waits are
 * now capped at the longest a timer runs as asked: a retry (or poll) still comes, and flush() / poll() ask at once.
 * Real memory backend (behind the fault-injecting wrapper for the tier), real timers.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { MAX_TIMER_MS } from "../../src/base/timers.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage, followGraph } from "../../src/persistence/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { sleep } from "../support/wait.js";

const HUGE = MAX_TIMER_MS * 2;

/** Collects the names of process warnings (Node's TimeoutOverflowWarning is one) until `stop()`. */
function watchWarnings(): { names: string[]; stop: () => void } {
  const names: string[] = [];
  const on = (w: Error): void => void names.push(w.name);
  process.on("warning", on);
  return { names, stop: () => process.off("warning", on) };
}

describe("a back-off past Node's timer range", () => {
  it("a tier's retry of a failing store is not armed to fire at once; flush() retries when the store is back", async () => {
    const warnings = watchWarnings();
    const backend = faultyBackend(memoryBackend(), [
      { op: "write", errno: "EIO" },
      { op: "writeBatch", errno: "EIO" },
    ]);
    let failed!: () => void;
    const firstFailure = new Promise<void>((r) => (failed = r));
    const kv = kvStorage<number>(backend, { debounceMs: 0, retry: { initialMs: HUGE, maxMs: HUGE }, onError: () => failed() });
    try {
      kv.save("k", 1);
      await firstFailure;
      const attempts = (): number => backend.calls.write + backend.calls.writeBatch;
      expect(attempts()).toBe(1);
      // Before the fix the retry fired after 1 ms, and again after each failure: dozens of attempts by now.
      await sleep(100);
      expect(attempts()).toBe(1);
      expect(warnings.names).not.toContain("TimeoutOverflowWarning");
      backend.heal();
      await kv.flush(); // at once, not after the back-off
      expect(backend.inner.read("k")).toBeDefined();
    } finally {
      warnings.stop();
      backend.heal(); // close() writes what is pending: a failed assertion above stays the one reported
      await kv.close();
    }
  });

  it("a follower's pollMs: the next poll waits the longest a timer can, and poll() asks at once", async () => {
    const warnings = watchWarnings();
    const backend = memoryBackend();
    const pair = () => ({
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "s" }),
      wal: kvStorage<WALFrame>(backend, { name: "w", codec: walFrameCodec }),
    });
    const g = createGraph("g");
    g.state("v", 0);
    const handle = attachSnapshotStorage(g, [pair()]);
    g.set("v", 1);
    await handle.flush();
    const g2 = createGraph("g");
    g2.state("v", 0);
    const follower = await followGraph(g2, pair(), { pollMs: HUGE });
    try {
      expect(follower.stats().nextPollMs).toBe(MAX_TIMER_MS);
      const polls = follower.stats().polls;
      await sleep(100);
      expect(follower.stats().polls).toBe(polls); // before the fix: a poll every ~1 ms
      expect(warnings.names).not.toContain("TimeoutOverflowWarning");
      g.set("v", 2);
      await handle.flush();
      await follower.poll();
      expect(g2.get("v")).toBe(2);
    } finally {
      warnings.stop();
      await follower.stop();
      await handle.dispose();
    }
  });
});
