/**
 * flush() calls posted after writes count against the store's bound while unanswered (docs/design.md §3.19, "Flush
 * calls"). Write-less calls join one queued flush per tier (flush-join); a call after a write is posted, and each
 * cost ~1.5 KB of main-thread heap (its waiter, op and promises) and a place in the actor's chain until answered,
 * uncounted: a writer pairing each save with a flush against a locked SQLite file held 50,000 of them under a
 * 4 MiB bound (+76 MB heap, +256 MB RSS). Now each weighs FLUSH_CALL_WEIGHT until answered, so the bound holds the
 * flushes too. Real worker thread, real SQLite file, a real second process holding its write lock.
 */
import { afterAll, afterEach, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { expectFlushesCounted, saveFlushUntilRefused } from "../support/save-flush-pairs.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("flush-call-weight");
afterAll(() => root.remove());
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

it("save + flush pairs against a locked store: unanswered flushes are counted, and stay within the bound", async () => {
  const max = 64 * 1024;
  const engine = openStorageEngine({ threads: 1, maxPendingBytes: max, onError: () => undefined });
  cleanups.push(() => engine.close());
  const path = root.fresh("s.db");
  const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", 0);
  await kv.flush();
  const lock = await lockSqliteFile(path);
  cleanups.push(async () => lock.kill());

  const pairs = await saveFlushUntilRefused(kv);
  // Before: ~800 flushes unanswered, ~1.6 MB beyond a count of 64 KiB.
  expectFlushesCounted(pairs, max);

  // Nothing accepted is lost: once the lock is gone a flush stores every value.
  await lock.release();
  await Promise.allSettled(pairs.calls);
  for (let tries = 0; ; tries++) {
    const stored = await kv.flush().then(
      () => true,
      (err: unknown) => {
        // The lock's end may meet an attempt (store-busy, transient): flush again until stored.
        if (tries > 50 || (err as StorageError).code !== "store-busy") throw err;
        return false;
      },
    );
    if (stored) break;
  }
  expect(pairs.unanswered()).toBe(0);
  const [stats] = await engine.stats();
  expect(stats!.pendingBytes).toBe(0);
  expect(await pairs.notStored()).toEqual([]);
});
