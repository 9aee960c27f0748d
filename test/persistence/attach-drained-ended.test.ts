/**
 * handle.drained() on a store that takes no writes for good settles, whichever wait it is in (review r265 of task 258):
 * - an own baseline (rebaseline()'s) whose store fails every write with corrupt-store or read-only: drained() waited
 *   on the gate's timer for good while flush() and rebaseline() rejected (F2);
 * - a store lost (finalError) behind a full WAL tier: the pair stops, and drained() resolved, reporting room to a
 *   writer whose changes are dropped, while flush() rejected write-refused: now it rejects with the stop error (F1);
 * - a backend whose finalError carries a code of its own (backend-error here): it is final by identity (F5);
 * - a file store whose directory was removed and made again: its lock is gone, the backend's finalError says so and
 *   drained() rejects with it, where every write failed ENOENT and drained() waited for good (F6); while the directory
 *   is only missing (it may be moved aside and come back, task 280) flush() rejects and drained() waits, and a
 *   directory moved back lets both complete;
 * - 50 drained() waiters behind a full tier share one write-attempt loop: the store is asked as often as for one (F3);
 * - an ENGINE store whose writes ended (file store removed and made again; SQLite lock file removed) behind a full WAL
 *   tier: the worker's final error reached the main thread as a new object nobody noted, the woken save's error was
 *   left in the outbox, and drained() resolved over changes that never land: now it rejects with it (review r279 F1);
 * - dispose() ends a drained() waiting behind a failing full tier: it rejects closed, where it stayed pending (r279 F5).
 * Real memory and file stores; the memory store behind the async test wrapper (test/support/test-backend.ts).
 */
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { StorageError } from "../../src/errors.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { endableBackend } from "../support/endable-backend.js";
import { attachA, backendPair, enginePair } from "../support/graph-a-pair.js";
import { outcome, settledTo, turns } from "../support/settled.js";
import { wrapBackend } from "../support/test-backend.js";
import { countWritePending } from "../support/write-pending-calls.js";

const root = mkdtempSync(join(tmpdir(), "grf-drained-ended-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Graph "g" over a WAL and a snapshot tier of `b` (the WAL tier bounded at `maxPendingBytes`, if given). */
const attachFull = (b: StorageBackend, maxPendingBytes?: number) => {
  const pair = backendPair(b, maxPendingBytes === undefined ? {} : { maxPendingBytes });
  return { ...attachA(pair), wal: pair.wal! };
};

it.each(["corrupt-store", "read-only"] as const)(
  "an own baseline whose store fails every write with %s: drained() rejects with it, as flush() and rebaseline() do",
  async (code) => {
    const { b, end } = endableBackend(false);
    const { g, h } = attachFull(b);
    try {
      await h.flush();
      end(new StorageError(code, `writes end (${code})`));
      g.set("a", "1");
      // An own baseline: its gate holds every later wave, and its timer retries it.
      expect(await outcome(h.rebaseline())).toBe(`rejected ${code}`);
      g.set("a", "2");
      // Before the fix drained() waited on the gate's retry timer for good (this test timed out).
      expect(await outcome(h.drained())).toBe(`rejected ${code}`);
      expect(await outcome(h.flush())).toBe(`rejected ${code}`);
    } finally {
      await h.dispose().catch(() => {});
    }
  },
  15_000,
);

it.each(["lose-then-fill", "fill-then-lose"] as const)(
  "a store lost behind a full WAL tier (%s): drained() rejects with the pair's stop error, as flush() does",
  async (mode) => {
    for (let i = 0; i < 3; i++) {
      const { b, end } = endableBackend(true);
      const { h, fill } = attachFull(b, 2_000);
      try {
        await h.flush();
        const lost = new StorageError("not-owner", "lease lost (test)", { reason: "taken-over" });
        if (mode === "lose-then-fill") end(lost);
        fill();
        if (mode === "fill-then-lose") end(lost);
        const drained = h.drained().then(
          () => undefined,
          (e: unknown) => e,
        );
        const flushed = await h.flush().then(
          () => undefined,
          (e: unknown) => e,
        );
        // Before the fix drained() resolved: "room" to a writer whose changes the stopped pair drops.
        expect(await drained).toMatchObject({ code: "write-refused" });
        expect(await drained).toBe(flushed);
      } finally {
        await h.dispose().catch(() => {});
      }
    }
  },
  30_000,
);

it("a backend's finalError with a code of its own (backend-error) ends drained() behind a full tier, by identity", async () => {
  const { b, end } = endableBackend(true);
  const { h, fill } = attachFull(b, 2_000);
  try {
    await h.flush();
    const final = new StorageError("backend-error", "this store takes no writes for good (test)");
    fill();
    end(final);
    // Before the fix: resolved (the code says "may pass", and the pair, not stopped by it, looked idle).
    const seen = await settledTo(h.drained());
    expect(seen).toBe(final);
  } finally {
    await h.dispose().catch(() => {});
  }
}, 15_000);

it("a file store whose directory was removed and made again: drained() behind its full WAL tier rejects with the store's error", async () => {
  const dir = join(root, "removed");
  const b = fileBackend(dir);
  const { h, fill } = attachFull(b, 2_000);
  try {
    await h.flush();
    rmSync(dir, { recursive: true, force: true });
    fill();
    let settled = false;
    const drained = settledTo(h.drained());
    void drained.finally(() => void (settled = true));
    // Only missing: it may come back (moved aside), so flush() rejects after its attempts and drained() waits.
    expect(await outcome(h.flush())).toBe("rejected backend-error");
    expect(settled).toBe(false);
    expect(b.finalError).toBeUndefined();
    // A directory made again is an empty store under no lock of this writer: final. Before 6431c1a every write failed
    // ENOENT (may pass) and drained() waited for good (this test timed out).
    mkdirSync(dir, { recursive: true });
    const err = await drained;
    expect(err).toBe(b.finalError);
    expect(err).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    // Nothing of this writer's lands there.
    expect(await outcome(h.flush())).toBe("rejected backend-error");
    expect(readdirSync(dir)).toEqual([]);
  } finally {
    await h.dispose().catch(() => {});
    b.close();
  }
}, 15_000);

it("a file store whose directory was moved aside and back: flush() rejects meanwhile, then drained() and flush() complete", async () => {
  const dir = join(root, "moved-aside");
  const b = fileBackend(dir);
  const { h, fill } = attachFull(b, 2_000);
  try {
    await h.flush();
    renameSync(dir, `${dir}.aside`);
    fill();
    let settled = false;
    const drained = settledTo(h.drained());
    void drained.finally(() => void (settled = true));
    expect(await outcome(h.flush())).toBe("rejected backend-error");
    expect(settled).toBe(false);
    renameSync(`${dir}.aside`, dir);
    // Before task 280 the lock's first failure was final: drained() rejected and every later flush() too.
    expect(await drained).toBe("resolved");
    expect(await outcome(h.flush())).toBe("resolved");
    expect(b.finalError).toBeUndefined();
  } finally {
    await h.dispose().catch(() => {});
    b.close();
  }
}, 15_000);

it("50 drained() waiters behind a full tier share one write-attempt loop", async () => {
  const b = wrapBackend(memoryBackend(), { async: true });
  const { h, wal, fill } = attachFull(b, 2_000);
  await h.flush();
  b.failAll(); // a full disk
  fill();
  // The real tier's writePending, counted (the call goes through).
  const calls = countWritePending(wal);
  const waiters = Array.from({ length: 50 }, () => h.drained());
  // Every waiter's first turn: each entered its wait (the old code's each asked the tier for a write there).
  await turns(3);
  expect(calls()).toBeGreaterThanOrEqual(1);
  expect(calls()).toBeLessThan(5); // before the fix: 50, one per waiter
  b.heal();
  await Promise.all(waiters);
  await h.dispose();
}, 15_000);

it.each(["file", "sqlite"] as const)(
  "an engine %s store whose writes ended behind a full WAL tier: drained() rejects with the store's error, as flush() does",
  async (kind) => {
    const dir = join(root, `engine-${kind}`);
    const spec: StoreSpec = kind === "file" ? { kind: "file", dir } : { kind: "sqlite", path: join(root, `engine-${kind}.db`) };
    const engine = openStorageEngine({ maxPendingBytes: 2_000 });
    const { h, fill } = attachA(enginePair(engine, spec));
    try {
      await h.flush();
      // Ended for good (task 280's rule): the directory removed and made again; the SQLite store's lock file removed.
      if (kind === "file") {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
      } else rmSync(`${join(root, `engine-${kind}.db`)}-lock`);
      fill();
      // Before the fix: resolved ("room" to a writer pacing on it) while flush() rejected store-moved.
      const drained = await settledTo(h.drained());
      expect(drained).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
      expect(await outcome(h.flush())).toBe("rejected backend-error");
      if (kind === "file") expect(readdirSync(dir)).toEqual([]); // nothing of this writer's lands there
    } finally {
      await h.dispose().catch(() => {});
      await engine.close().catch(() => {});
    }
  },
  30_000,
);

it("dispose() ends a drained() waiting behind a failing full tier: it rejects closed", async () => {
  const b = wrapBackend(memoryBackend(), { async: true });
  const { h, fill } = attachFull(b, 2_000);
  await h.flush();
  b.failAll(); // a full disk: failures that may pass, so drained() waits
  fill();
  let settled = false;
  const drained = outcome(h.drained());
  void drained.finally(() => void (settled = true));
  expect(await outcome(h.flush())).toBe("rejected backend-error"); // its bounded attempts failed: drained() waits on
  expect(settled).toBe(false);
  await h.dispose().catch(() => {});
  // Before the fix it stayed pending for good (its tier's drained() behind the failing store: this test timed out).
  expect(await drained).toBe("rejected closed");
  expect(await outcome(h.drained())).toBe("rejected closed");
}, 15_000);
