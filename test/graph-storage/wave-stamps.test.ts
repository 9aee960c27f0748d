/**
 * Each wave's frames carry a frame_t_ns of their own, above the previous wave's. Readers tell waves apart by it
 * (a follower holds a removal until the wave end where its node is back: src/persistence/follow-hold.ts), and
 * Date.now() gave every wave of one millisecond the same stamp, so a follower took them for one wave (review s14
 * I2). Frames of one wave still share theirs.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { attachSnapshotStorage, createGraph, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, type WALFrame } from "../../src/wal/index.js";

describe("wave stamps", () => {
  it("two hundred waves in a few milliseconds get strictly increasing frame_t_ns; a wave's frames share one", async () => {
    const backend = memoryBackend();
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }), wal };
    const graph = createGraph("g");
    graph.state("a", 0);
    graph.state("b", 0);
    const handle = attachSnapshotStorage(graph, [pair]);
    for (let i = 1; i <= 200; i++) {
      graph.batch(() => {
        graph.set("a", i);
        graph.set("b", i);
      });
    }
    await handle.flush();
    const keys = (await wal.list(graphWalPrefix("g"))).sort();
    const frames = (await Promise.all(keys.map((k) => wal.load(k)))) as WALFrame[];
    expect(frames).toHaveLength(400);
    for (let w = 0; w < 200; w++) {
      const [first, second] = [frames[2 * w] as WALFrame, frames[2 * w + 1] as WALFrame];
      expect(first.frame_t_ns).toBe(second.frame_t_ns);
      if (w > 0) expect(Number(first.frame_t_ns)).toBeGreaterThan(Number((frames[2 * w - 1] as WALFrame).frame_t_ns));
    }
    const wallNs = Date.now() * 1_000_000;
    expect(Number((frames[399] as WALFrame).frame_t_ns)).toBeLessThanOrEqual(wallNs + 1e9);
    handle.dispose();
  });
});
