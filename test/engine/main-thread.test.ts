/**
 * The main thread never waits on disk: saturate a SQLite store (synchronous FULL) through the engine while
 * the main thread's own 1 ms interval keeps counting and monitorEventLoopDelay records. The worker does the
 * I/O (its stats count the bytes, the file grows); the main thread's timers keep firing while flushes are
 * outstanding. The measured delay is reported, never asserted.
 */
import { statSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { tempRoot, turn } from "./fixtures/helpers.js";

const root = tempRoot("main-thread");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

const BATCHES = 150;
const PER_BATCH = 200;
const PAD = "p".repeat(200);

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

describe("main thread never blocks on disk", () => {
  it("a saturating write load runs in the worker while the main thread's timers keep firing", async () => {
    engine = openStorageEngine({ threads: 1, synchronous: "FULL" });
    const path = root.fresh("busy.db");
    const kv = engine.kv<{ b: number; i: number; pad: string }>({ kind: "sqlite", path }, { debounceMs: 60_000 });
    kv.save("warm-up", { b: -1, i: 0, pad: "" });
    await kv.flush();
    const diskBefore = sizeOf(path) + sizeOf(`${path}-wal`);
    const [statsBefore] = await engine.stats();

    const delay = monitorEventLoopDelay({ resolution: 1 });
    let outstanding = 0;
    let ticksWhileFlushing = 0;
    const interval = setInterval(() => {
      if (outstanding > 0) ticksWhileFlushing++;
    }, 1);
    delay.enable();
    const flushes: Promise<void>[] = [];
    try {
      for (let b = 0; b < BATCHES; b++) {
        for (let i = 0; i < PER_BATCH; i++) kv.save(`b${b}/${i}`, { b, i, pad: PAD });
        outstanding++;
        flushes.push(kv.flush().finally(() => outstanding--));
        await turn(); // the main thread only queues and moves on
      }
      await Promise.all(flushes);
    } finally {
      clearInterval(interval);
      delay.disable();
    }

    const [statsAfter] = await engine.stats();
    const diskAfter = sizeOf(path) + sizeOf(`${path}-wal`);
    console.log(
      `[main-thread] event-loop delay p50 ${(delay.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(2)} ms, ` +
        `max ${(delay.max / 1e6).toFixed(2)} ms; ${ticksWhileFlushing} main-thread interval ticks while flushes were outstanding; ` +
        `worker flush p50 ${statsAfter!.flushLatencyP50Ms?.toFixed(2)} ms, p99 ${statsAfter!.flushLatencyP99Ms?.toFixed(2)} ms; ` +
        `${statsAfter!.bytesWritten - statsBefore!.bytesWritten} bytes written`,
    );
    expect(ticksWhileFlushing).toBeGreaterThan(0);
    expect(statsAfter!.flushes - statsBefore!.flushes).toBe(BATCHES);
    expect(statsAfter!.bytesWritten - statsBefore!.bytesWritten).toBeGreaterThan(BATCHES * PER_BATCH * PAD.length);
    expect(diskAfter).toBeGreaterThan(diskBefore);
    expect(await kv.list("b")).toHaveLength(BATCHES * PER_BATCH);
  });
});
