/**
 * Review r249 D1: a write refused for room (backpressure) waits on drained(), and the pending writes drain only
 * when the tier flushes. With a debounce window the refusal did not close the window: drained() waited for it (a
 * 60 s window: a minute of refused writes), and with a window past Node's timer range (no timer) forever unless the
 * app called flush(). A full bound now closes the window at once. Real memory backend, real timers.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { MAX_TIMER_MS } from "../../src/base/timers.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";

/** Saves 1 KB values until one is refused for room; that refusal's weight. */
function fillUntilRefused(save: (key: string, value: string) => void): number {
  for (let i = 0; i < 1_000; i++) {
    try {
      save(`k${i}`, "x".repeat(1_000));
    } catch (err) {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("backpressure");
      return (err as StorageError & { details: { weight: number } }).details.weight;
    }
  }
  throw new Error("no write was refused");
}

describe("a full maxPendingBytes closes the debounce window", () => {
  it.each([
    ["a window past the timer range (no timer)", MAX_TIMER_MS + 1],
    ["a 10-minute window", 600_000],
  ])("%s: a refused write's drained() resolves and the write is then taken", async (_, debounceMs) => {
    const backend = memoryBackend();
    const kv = kvStorage<string>(backend, { debounceMs, maxPendingBytes: 8_192 });
    try {
      const weight = fillUntilRefused((k, v) => kv.save(k, v));
      await kv.drained!(weight); // before the fix: never (no timer) or after the window's 10 minutes
      expect(backend.list().length).toBeGreaterThan(0); // the window closed: what it held was written
      kv.save("again", "x".repeat(1_000)); // taken now
      await kv.flush();
      expect(await kv.load("again")).toBe("x".repeat(1_000));
    } finally {
      await kv.close();
    }
  }, 15_000);
});
