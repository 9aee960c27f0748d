/**
 * Task 246: a tier's debounceMs past Node's timer range (2^31 - 1 ms, ~24.8 days) ran its window after 1 ms (Node
 * clamps such a setTimeout delay to 1 with only a TimeoutOverflowWarning): a tier asked to hold writes for a month
 * wrote them at once. It now means no timer, as the engine's delay options do (src/base/timers.ts): the writes wait for
 * flush(), compactEvery or close(). Real memory backend, real timers.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { MAX_TIMER_MS } from "../../src/base/timers.js";
import { kvStorage } from "../../src/tier/kv.js";

/** A real timer of `ms`, then a turn of the event loop: what a 1 ms window's flush needs to have run. */
const passed = (ms: number): Promise<void> => new Promise((done) => setTimeout(() => setImmediate(done), ms));

describe("debounceMs beyond Node's timer range", () => {
  it("holds the writes (no flush after 1 ms) until flush()", async () => {
    const backend = memoryBackend();
    const kv = kvStorage<number>(backend, { debounceMs: MAX_TIMER_MS + 1 });
    try {
      kv.save("k", 1);
      await passed(20); // 20 times the 1 ms Node gave the window before the fix
      expect(backend.list()).toEqual([]);
      await kv.flush();
      expect(backend.list().length).toBe(1);
    } finally {
      await kv.close();
    }
  });

  it("close() still writes what the window held", async () => {
    const backend = memoryBackend();
    const kv = kvStorage<number>(backend, { debounceMs: 30 * 24 * 3600 * 1000 });
    kv.save("k", 1);
    await passed(20);
    expect(backend.list()).toEqual([]);
    await kv.close();
    expect(backend.list().length).toBe(1);
  });

  it("control: a window in range still flushes by itself", async () => {
    const backend = memoryBackend();
    const kv = kvStorage<number>(backend, { debounceMs: 1 });
    try {
      const flushed = new Promise<void>((done) => {
        const poll = (): void => void (backend.list().length > 0 ? done() : setTimeout(poll, 5));
        poll();
      });
      kv.save("k", 1);
      await flushed;
      expect(backend.list().length).toBe(1);
    } finally {
      await kv.close();
    }
  });
});
