/**
 * An append-log batch whose write fails goes back to pending as its segments' bytes (segments layout), so each retry
 * writes the same segments instead of encoding every entry again, as snapshot and kv batches do (CPU per retry, a
 * second encoding of the batch held while it ran). The actor in an engine worker drives the same AppendLogCore.
 */
import { describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { countingCodec } from "../support/counting-codec.js";
import { faultyBackend } from "../support/faulty-backend.js";

type Entry = { b: string; i: number };

describe("append-log retries write the segments encoded once", () => {
  for (const async of [false, true]) {
    it(`one encode per bucket across failed flushes, entries appended meanwhile in a segment of their own (${async ? "async" : "sync"} backend)`, async () => {
      const backend = faultyBackend(sqliteBackend(":memory:"), [{ op: "writeBatch", errno: "EIO", times: 3 }], { async });
      const codec = countingCodec<readonly Entry[]>();
      const log = appendLogStorage<Entry>(backend, { codec, debounceMs: 60_000, keyOf: (e) => e.b, onError: () => {} });
      log.appendEntries([{ b: "x", i: 0 }, { b: "y", i: 1 }]);
      log.appendEntries([{ b: "x", i: 2 }]);
      for (let i = 0; i < 3; i++) await expect(log.flush()).rejects.toThrow();
      expect(codec.encodes).toBe(2); // before: 2 per attempt
      log.appendEntries([{ b: "x", i: 3 }]); // appended while the batch failed: encoded once, after it
      await log.flush();
      expect(backend.calls.writeBatch).toBe(4);
      expect(codec.encodes).toBe(3);
      const { entries } = await log.loadEntries();
      expect(entries.filter((e) => e.b === "x").map((e) => e.i)).toEqual([0, 2, 3]);
      expect(entries.filter((e) => e.b === "y").map((e) => e.i)).toEqual([1]);
      // The next flush continues after the retried segments.
      log.appendEntries([{ b: "y", i: 4 }]);
      await log.flush();
      expect((await log.loadEntries()).entries.filter((e) => e.b === "y").map((e) => e.i)).toEqual([1, 4]);
      await log.close();
    });
  }

  it("overwrite mode: the retried bucket holds what the failed flush would have written plus what came since", async () => {
    // One chunk is a batch (fold, base, the fold deleted: design §3.11), two chunks one write (a fold kept): both
    // fail until the retry goes through.
    const faults = [{ op: "write", errno: "EIO", times: 2 }, { op: "writeBatch", errno: "EIO", times: 2 }] as const;
    const backend = faultyBackend(memoryBackend(), faults.map((f) => ({ ...f })));
    const codec = countingCodec<readonly number[]>();
    const log = appendLogStorage<number>(backend, { codec, debounceMs: 60_000, mode: "overwrite", onError: () => {} });
    log.appendEntries([1, 2]);
    for (let i = 0; i < 2; i++) await expect(log.flush()).rejects.toThrow();
    log.appendEntries([3]);
    for (let i = 0; i < 2; i++) await expect(log.flush()).rejects.toThrow();
    await log.flush();
    expect(codec.encodes).toBe(2);
    expect((await log.loadEntries()).entries).toEqual([1, 2, 3]);
    log.appendEntries([9]);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([9]);
    await log.close();
  });
});
